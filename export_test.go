package sluice

import "github.com/sluicehq/sluice/internal/gateway"

// APIRoutes lists the HTTP API's routes, for the authorization tests.
func (a *App) APIRoutes() []gateway.Route { return a.gw.Routes() }
