package api_test

// The client generated from openapi.json (TestOpenAPIClientCompiles) needs
// oapi-codegen's runtime: this import keeps it, and its sums, in go.mod.
import _ "github.com/oapi-codegen/runtime"
