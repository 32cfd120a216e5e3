// Package activities holds the workflow's activities: the write behind every
// subscription transition. (What the transitions queue in the outbox is
// delivered by package outbox, outside Temporal.)
package activities

import (
	"context"

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
		faultAfterCommit(c)
	}
	if err == nil && a.Observe != nil {
		for _, e := range c.Events {
			a.Observe(e)
		}
	}
	return res, err
}
