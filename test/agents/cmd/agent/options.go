package main

import (
	"os"

	"github.com/netbirdio/netbird/client/embed"
)

// options for NetBird v0.77.1's embed client: connections made at once (not
// lazily) and a random WireGuard port, so several agents share one host.
func options(key, mgmt, name, config, state, logLevel string) embed.Options {
	lazy := false
	port := 0
	return embed.Options{
		DeviceName:            name,
		SetupKey:              key,
		ManagementURL:         mgmt,
		ConfigPath:            config,
		StatePath:             state,
		LogLevel:              logLevel,
		LogOutput:             os.Stderr,
		LazyConnectionEnabled: &lazy,
		WireguardPort:         &port,
		DisableClientRoutes:   true,
	}
}
