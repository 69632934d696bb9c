// NetBird's combined server (management + embedded IdP + signal) without its
// fixed legacy management port, so several test runs can share a host.
package main

import (
	log "github.com/sirupsen/logrus"

	"github.com/netbirdio/netbird/combined/cmd"
	mgmtServer "github.com/netbirdio/netbird/management/internals/server"
)

func main() {
	cmd.SetNewServer(func(cfg *mgmtServer.Config) mgmtServer.Server {
		cfg.DisableLegacyManagementPort = true
		return mgmtServer.NewServer(cfg)
	})
	if err := cmd.Execute(); err != nil {
		log.Fatalf("management: %v", err)
	}
}
