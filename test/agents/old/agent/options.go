package main

import (
	"os"

	"github.com/netbirdio/netbird/client/embed"
)

// options for NetBird v0.65.3's embed client, which has no LazyConnectionEnabled
// (lazy connections stay off unless NB_ENABLE_EXPERIMENTAL_LAZY_CONN is set).
func options(key, mgmt, name, config, state, logLevel string) embed.Options {
	port := 0
	return embed.Options{
		DeviceName:          name,
		SetupKey:            key,
		ManagementURL:       mgmt,
		ConfigPath:          config,
		StatePath:           state,
		LogLevel:            logLevel,
		LogOutput:           os.Stderr,
		WireguardPort:       &port,
		DisableClientRoutes: true,
	}
}
