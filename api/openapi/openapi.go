// Package openapi embeds the service's HTTP contract as an OpenAPI 3.1
// document, served at GET /openapi.json and checked by tests.
package openapi

import (
	_ "embed"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed openapi.json
var document []byte

// Document returns the raw OpenAPI document. Callers must not modify it.
func Document() []byte { return document }

// Load parses the document (without validating it; see (*openapi3.T).Validate).
func Load() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("load openapi document: %w", err)
	}
	return doc, nil
}
