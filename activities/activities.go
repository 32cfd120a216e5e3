// Package activities holds the service's side effects: the read-model write
// behind every workflow transition, and the delivery of publisher notifications.
package activities

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
)

// Activities are registered once on the worker.
type Activities struct {
	Store *store.Store
	Vault *vault.Vault
	// Observe, when set, sees every event that a transition wrote (metrics).
	Observe func(domain.Event)
}

// SaveSubscription persists one transition (snapshot, timeline, ledger,
// outbox, authorization code hash) in one transaction. Safe to run twice.
func (a *Activities) SaveSubscription(ctx context.Context, c domain.Change) (domain.SaveResult, error) {
	var codeHash []byte
	if c.IssueLinkUntil != nil {
		codeHash = vault.Hash(a.Vault.AuthorizationCode(c.Subscription.ID))
	}
	res, err := a.Store.SaveChange(ctx, c, codeHash)
	if err == nil {
		exitAfterChargeFault(c)
	}
	if err == nil && a.Observe != nil {
		for _, e := range c.Events {
			a.Observe(e)
		}
	}
	return res, err
}

// faultExitAfterCharge is a test-only fault point, off by default: with
// FAULT_EXIT_AFTER_CHARGE=N in a worker's environment, the process exits hard
// (status 137, like a SIGKILL) right after a change holding a charge was
// committed, before the activity can report completion, for the first N such
// commits of the process (in practice the first: the process ends there).
// The chaos test uses it to prove a retried transition does not charge twice.
var faultExitAfterCharge atomic.Int64

func init() {
	n, _ := strconv.Atoi(os.Getenv("FAULT_EXIT_AFTER_CHARGE"))
	faultExitAfterCharge.Store(int64(n))
}

func exitAfterChargeFault(c domain.Change) {
	if faultExitAfterCharge.Load() <= 0 {
		return
	}
	for _, l := range c.Ledger {
		if l.Kind == domain.LedgerCharge && faultExitAfterCharge.Add(-1) >= 0 {
			fmt.Fprintf(os.Stderr, "FAULT_EXIT_AFTER_CHARGE: exiting after committing %s\n", l.ID)
			os.Exit(137)
		}
	}
}
