package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

// A plan's veto window round-trips; a plan without one reads back the default.
func TestPlanChangeVetoWindow(t *testing.T) {
	f := seeded(t)
	p, err := f.st.Plan(f.ctx, offerID, planID)
	require.NoError(t, err)
	assert.Equal(t, domain.DefaultPlanChangeVetoWindow, p.PlanChangeVetoWindow, "a plan stored without one has the default")

	premium := p
	premium.ID, premium.UnitPriceMinor, premium.PlanChangeVetoWindow = "premium-annual", 2000, "PT30S"
	require.NoError(t, f.st.UpsertPlan(f.ctx, premium))
	got, err := f.st.Plan(f.ctx, offerID, "premium-annual")
	require.NoError(t, err)
	assert.Equal(t, premium, got)
}

// The pending plan change is stored, read back, replaced as the change
// settles (plan_id with it) and cleared; a notification's data lands in the
// outbox beside the snapshot, NULL when it carries none.
func TestSaveChangeKeepsThePendingPlanChange(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-pc")
	f.save(t, purchase(sub), nil)
	active := activation(sub)
	f.save(t, active, nil)

	requestedAt := t0.Add(2 * time.Hour)
	requested := active.Subscription
	requested.Version, requested.UpdatedAt = 3, requestedAt
	requested.PendingPlanChange = &domain.PlanChange{
		PlanID: "premium-annual", FromPlanID: planID, Kind: domain.PlanChangeUpgrade, Effective: domain.PlanChangeNow,
		Stage: domain.PlanChangeAwaitingPublisher, RequestedAt: requestedAt, VetoEndsAt: requestedAt.Add(time.Hour),
	}
	data := map[string]any{"from_plan_id": planID, "plan_id": "premium-annual"}
	change := domain.Change{
		Subscription: requested,
		Events: []domain.Event{{SubscriptionID: sub.ID, Key: "sub-pc:3", At: requestedAt, Type: domain.EventPlanChangeRequested,
			Actor: "agent:alice", Detail: data}},
		Notifications: []domain.Notification{{ID: "msg_sub-pc_3", Type: domain.NotifyPlanChangeRequested, OccurredAt: requestedAt, Data: data}},
	}
	f.save(t, change, nil)
	f.save(t, change, nil) // retried
	got, err := f.st.Subscription(f.ctx, "sub-pc")
	require.NoError(t, err)
	requested.BillingAccountID = got.BillingAccountID // the customer's default account, placed by the store
	assert.Equal(t, requested, got, "the pending change round-trips")

	var raw []byte
	require.NoError(t, f.db.GetContext(f.ctx, &raw, `SELECT data FROM outbox WHERE id = 'msg_sub-pc_3'`))
	var stored map[string]any
	require.NoError(t, json.Unmarshal(raw, &stored))
	assert.Equal(t, data, stored)
	assert.Equal(t, 2, f.count(t, "outbox WHERE data IS NULL"), "notifications without data store NULL")
	due, err := f.st.ClaimDueNotifications(f.ctx, 10, time.Minute)
	require.NoError(t, err)
	byID := map[string]store.PendingNotification{}
	for _, n := range due {
		byID[n.ID] = n
	}
	assert.JSONEq(t, `{"from_plan_id":"std-annual","plan_id":"premium-annual"}`, string(byID["msg_sub-pc_3"].Data))
	assert.Nil(t, byID[sub.ID+":activated"].Data)

	changedAt := requestedAt.Add(time.Hour)
	changed := requested
	changed.Version, changed.UpdatedAt, changed.PlanID, changed.PendingPlanChange = 4, changedAt, "premium-annual", nil
	f.save(t, domain.Change{Subscription: changed, Ledger: []domain.LedgerEntry{{
		ID: "proration:sub-pc:1:plan-pc", SubscriptionID: sub.ID, TermNumber: 1, Kind: domain.LedgerProration, AmountMinor: 3990,
		Currency: "USD", PeriodStart: *active.Subscription.TermStart, PeriodEnd: *active.Subscription.TermEnd, CreatedAt: changedAt,
	}}}, nil)
	got, err = f.st.Subscription(f.ctx, "sub-pc")
	require.NoError(t, err)
	assert.Equal(t, "premium-annual", got.PlanID, "the read model follows the plan")
	assert.Nil(t, got.PendingPlanChange)
	_, balance, err := f.st.Ledger(f.ctx, "sub-pc")
	require.NoError(t, err)
	assert.Equal(t, int64(6000+3990), balance)

	// The same proration key with another amount is a conflict, never an overwrite.
	again := changed
	again.Version = 5
	_, err = f.st.SaveChange(f.ctx, domain.Change{Subscription: again, Ledger: []domain.LedgerEntry{{
		ID: "proration:sub-pc:1:plan-pc", SubscriptionID: sub.ID, TermNumber: 1, Kind: domain.LedgerProration, AmountMinor: 3989,
		Currency: "USD", PeriodStart: *active.Subscription.TermStart, PeriodEnd: *active.Subscription.TermEnd, CreatedAt: changedAt,
	}}}, nil)
	require.ErrorIs(t, err, store.ErrConflict)
	_, balance, err = f.st.Ledger(f.ctx, "sub-pc")
	require.NoError(t, err)
	assert.Equal(t, int64(6000+3990), balance)

	// An older snapshot arriving late moves neither plan nor pending change back.
	f.save(t, change, nil)
	got, err = f.st.Subscription(f.ctx, "sub-pc")
	require.NoError(t, err)
	assert.Equal(t, "premium-annual", got.PlanID)
	assert.Nil(t, got.PendingPlanChange)
}
