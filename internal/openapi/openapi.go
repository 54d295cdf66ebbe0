// Package openapi holds the OpenAPI 3.1 description of the HTTP API
// (openapi.json), served at GET /openapi.json. Edit the JSON by hand when a
// route or an answer changes: cmd/auditstore's tests check that every
// route the server registers is described and that real answers validate
// against it.
package openapi

import _ "embed"

// JSON is the description, as served.
//
//go:embed openapi.json
var JSON []byte
