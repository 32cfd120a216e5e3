//go:build faults

package activities

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/partnerhub/fulfillment/domain"
)

// Test-only fault points, compiled only with `-tags faults` (the binary the
// e2e tests build); the production binary has none. With
// FAULT_EXIT_AFTER_CHARGE=N (or FAULT_EXIT_AFTER_REFUND=N) in a worker's
// environment, the process exits hard (status 137, like a SIGKILL) right
// after a change holding a charge (a refund) was committed, before the
// activity can report completion, for the first N such commits of the process
// (in practice the first: the process ends there). The chaos tests use them to
// prove a retried transition neither charges nor refunds twice and leaves no
// row Temporal did not record.
var faultExits = map[string]*atomic.Int64{
	domain.LedgerCharge: faultCount("FAULT_EXIT_AFTER_CHARGE"),
	domain.LedgerRefund: faultCount("FAULT_EXIT_AFTER_REFUND"),
}

func faultCount(env string) *atomic.Int64 {
	n, _ := strconv.Atoi(os.Getenv(env))
	var c atomic.Int64
	c.Store(int64(n))
	return &c
}

func faultAfterCommit(c domain.Change) {
	for _, l := range c.Ledger {
		left, ok := faultExits[l.Kind]
		if ok && left.Load() > 0 && left.Add(-1) >= 0 {
			fmt.Fprintf(os.Stderr, "FAULT_EXIT_AFTER_%s: exiting after committing %s\n", strings.ToUpper(l.Kind), l.ID)
			os.Exit(137)
		}
	}
}
