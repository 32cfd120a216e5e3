package seed

import _ "embed"

// Demo is the seed `fulfillment dev` loads: one publisher, a SaaS offer with
// a yearly and a 2-minute plan, an app linkable to it, two partners.
//
//go:embed demo.json
var Demo []byte
