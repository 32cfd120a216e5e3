//go:build !faults

package activities

import "github.com/partnerhub/fulfillment/domain"

// faultAfterCommit is a no-op outside test builds (see faults.go).
func faultAfterCommit(domain.Change) {}
