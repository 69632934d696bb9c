package main

import (
	_ "github.com/netbirdio/netbird/shared/relay/auth/hmac/v2"
	_ "github.com/netbirdio/netbird/shared/relay/client"
)

func main() {}
