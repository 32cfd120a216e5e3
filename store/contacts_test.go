package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/email"
	"github.com/partnerhub/fulfillment/store"
)

var woodgrove = store.CustomerRef{PartnerID: partnerID, CustomerID: customerID}

// withContacts gives woodgrove a primary contact (ann) and a technical one (ben).
func withContacts(t *testing.T, f *fixture) (ann, ben store.Contact) {
	t.Helper()
	ann, created, err := f.st.AssignFirstContact(f.ctx, woodgrove, "ann@woodgrove.example", "agent:alice")
	require.NoError(t, err)
	require.True(t, created)
	ben, err = f.st.AddContact(f.ctx, actor(ann), "ben@woodgrove.example", []string{"technical"})
	require.NoError(t, err)
	return ann, ben
}

func actor(k store.Contact) store.ContactActor {
	return store.ContactActor{CustomerRef: woodgrove, ContactID: k.ID}
}

func TestFirstContactIsPrimaryAndWelcomed(t *testing.T) {
	f := seeded(t)
	ann, created, err := f.st.AssignFirstContact(f.ctx, woodgrove, "ann@WOODGROVE.example", "agent:alice")
	require.NoError(t, err)
	assert.True(t, created)
	assert.True(t, ann.Primary)
	assert.Equal(t, "ann@woodgrove.example", ann.Email)
	assert.ElementsMatch(t, []string{"technical", "billing"}, []string(ann.Roles))

	// Naming the same contact again (a purchase retried) changes nothing; naming someone else is refused.
	again, created, err := f.st.AssignFirstContact(f.ctx, woodgrove, "ann@woodgrove.example", "agent:alice")
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, ann.ID, again.ID)
	_, _, err = f.st.AssignFirstContact(f.ctx, woodgrove, "eve@woodgrove.example", "agent:alice")
	assert.ErrorIs(t, err, store.ErrCustomerHasOther)
	_, _, err = f.st.AssignFirstContact(f.ctx, woodgrove, "not an address", "agent:alice")
	assert.ErrorIs(t, err, store.ErrInvalidEmail)

	emails, err := f.st.CustomerEmails(f.ctx, woodgrove)
	require.NoError(t, err)
	require.Len(t, emails, 1)
	assert.Equal(t, email.KindWelcome, emails[0].Kind)
	assert.Equal(t, "ann@woodgrove.example", emails[0].Recipient)

	events, err := f.st.CustomerEvents(f.ctx, woodgrove)
	require.NoError(t, err)
	require.Len(t, events, 1)
	assert.Equal(t, "contact_added", events[0].Type)
	assert.Equal(t, "agent:alice", events[0].Actor)
}

func TestContactRules(t *testing.T) {
	f := seeded(t)
	ann, ben := withContacts(t, f)

	// Roles: only technical and billing, at least one.
	_, err := f.st.SetContactRoles(f.ctx, actor(ben), ben.ID, nil)
	assert.ErrorIs(t, err, store.ErrInvalidRoles)
	_, err = f.st.SetContactRoles(f.ctx, actor(ben), ben.ID, []string{"owner"})
	assert.ErrorIs(t, err, store.ErrInvalidRoles)
	changed, err := f.st.SetContactRoles(f.ctx, actor(ben), ben.ID, []string{"billing", "technical", "billing"})
	require.NoError(t, err)
	assert.Equal(t, []string{"billing", "technical"}, []string(changed.Roles))

	// The same address twice is refused.
	_, err = f.st.AddContact(f.ctx, actor(ben), "Ben@woodgrove.example", []string{"billing"})
	assert.ErrorIs(t, err, store.ErrContactExists)

	// The primary cannot leave, and only the primary hands the role over.
	assert.ErrorIs(t, f.st.RemoveContact(f.ctx, actor(ann), ann.ID), store.ErrPrimaryContact)
	assert.ErrorIs(t, f.st.RemoveContact(f.ctx, actor(ben), ann.ID), store.ErrPrimaryContact)
	assert.ErrorIs(t, f.st.HandOverPrimary(f.ctx, actor(ben), ben.ID), store.ErrNotPrimary)
	require.NoError(t, f.st.HandOverPrimary(f.ctx, actor(ann), ben.ID))
	list, err := f.st.Contacts(f.ctx, woodgrove)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, ben.ID, list[0].ID)
	assert.True(t, list[0].Primary)
	assert.False(t, list[1].Primary)

	// Now ann may leave; ben, the last contact, may not.
	require.NoError(t, f.st.RemoveContact(f.ctx, actor(ann), ann.ID))
	assert.ErrorIs(t, f.st.RemoveContact(f.ctx, actor(ben), ben.ID), store.ErrLastContact)
	// A removed contact can no longer act.
	_, err = f.st.AddContact(f.ctx, actor(ann), "eve@woodgrove.example", []string{"billing"})
	assert.ErrorIs(t, err, store.ErrNotFound)

	events, err := f.st.CustomerEvents(f.ctx, woodgrove)
	require.NoError(t, err)
	var types []string
	for _, e := range events {
		types = append(types, e.Type+" by "+e.Actor)
	}
	assert.Equal(t, []string{
		"contact_added by agent:alice", "contact_added by contact:" + ann.ID, "contact_roles_changed by contact:" + ben.ID,
		"primary_contact_changed by contact:" + ann.ID, "contact_removed by contact:" + ann.ID,
	}, types)
}

func TestContactsAreTenantScoped(t *testing.T) {
	f := seeded(t)
	ann, _ := withContacts(t, f)
	other := store.CustomerRef{PartnerID: partnerID, CustomerID: otherCustomer}
	// ann is no contact of northwind: she cannot act there.
	_, err := f.st.AddContact(f.ctx, store.ContactActor{CustomerRef: other, ContactID: ann.ID}, "x@y.example", []string{"billing"})
	assert.ErrorIs(t, err, store.ErrNotFound)
	list, err := f.st.Contacts(f.ctx, other)
	require.NoError(t, err)
	assert.Empty(t, list)
	// A customer of another partner with the same id is another customer.
	_, _, err = f.st.AssignFirstContact(f.ctx, store.CustomerRef{PartnerID: otherPartner, CustomerID: customerID}, "a@b.example", "agent:x")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func TestConcurrentHandOversKeepOnePrimary(t *testing.T) {
	f := seeded(t)
	ann, ben := withContacts(t, f)
	cat, err := f.st.AddContact(f.ctx, actor(ann), "cat@woodgrove.example", []string{"billing"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for _, to := range []store.Contact{ben, cat} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = f.st.HandOverPrimary(f.ctx, actor(ann), to.ID)
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, f.count(t, "customer_contacts WHERE is_primary AND removed_at IS NULL"))
}

func TestOperatorSetsPrimaryAudited(t *testing.T) {
	f := seeded(t)
	_, ben := withContacts(t, f)
	to, err := f.st.SetPrimaryByOperator(f.ctx, woodgrove, "ben@woodgrove.example", "olga", "ann left the company")
	require.NoError(t, err)
	assert.Equal(t, ben.ID, to.ID)
	list, err := f.st.Contacts(f.ctx, woodgrove)
	require.NoError(t, err)
	assert.Equal(t, ben.ID, list[0].ID)
	assert.True(t, list[0].Primary)
	assert.Equal(t, 1, f.count(t, "audit_log WHERE actor = 'operator:olga' AND action = 'contacts.set_primary'"))
	_, err = f.st.SetPrimaryByOperator(f.ctx, woodgrove, "nobody@woodgrove.example", "olga", "")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// The emails a transition causes are queued in its own transaction, once
// however often it is retried.
func TestTransitionsQueueCustomerEmails(t *testing.T) {
	f := seeded(t)
	withContacts(t, f)
	f.exec(t, `UPDATE plans SET renewal_reminder_lead = 'P30D'`)
	sub := subscription("sub-1")
	for range 2 {
		f.save(t, purchase(sub), nil)
	}
	act := activation(sub)
	for range 2 {
		f.save(t, act, nil)
	}
	emails, err := f.st.CustomerEmails(f.ctx, woodgrove)
	require.NoError(t, err)
	byKind := map[string][]store.OutboxEmail{}
	for _, e := range emails {
		byKind[e.Kind] = append(byKind[e.Kind], e)
	}
	assert.Len(t, byKind[email.KindWelcome], 2)
	assert.Len(t, byKind[email.KindOrderPlaced], 2, "every contact hears of the order once")
	assert.Len(t, byKind[email.KindRenewalReminder], 2, "ann and ben are both technical contacts")
}

func TestRenewalReminderSchedule(t *testing.T) {
	f := seeded(t)
	ann, ben := withContacts(t, f)
	_, err := f.st.SetContactRoles(f.ctx, actor(ann), ann.ID, []string{"billing"})
	require.NoError(t, err)
	f.exec(t, `UPDATE plans SET renewal_reminder_lead = 'P30D'`)
	sub := subscription("sub-1")
	f.save(t, purchase(sub), nil)
	act := activation(sub)
	f.save(t, act, nil)
	emails, err := f.st.CustomerEmails(f.ctx, woodgrove)
	require.NoError(t, err)
	var reminders []store.OutboxEmail
	for _, e := range emails {
		if e.Kind == email.KindRenewalReminder {
			reminders = append(reminders, e)
		}
	}
	require.Len(t, reminders, 1, "technical contacts only")
	assert.Equal(t, ben.Email, reminders[0].Recipient)
	assert.WithinDuration(t, act.Subscription.TermEnd.Add(-30*24*time.Hour), reminders[0].SendAfter, time.Second)

	// The dispatcher sees it only from then on.
	assert.Equal(t, 1, f.count(t, "email_outbox WHERE kind = 'renewal_reminder' AND next_attempt_at = send_after"))
	// Send time re-checks the read model.
	ok, err := f.st.RenewalStillDue(f.ctx, sub.ID, 1)
	require.NoError(t, err)
	assert.True(t, ok)
	off := act.Subscription
	off.AutoRenew, off.Version = false, 3
	f.save(t, domain.Change{Subscription: off}, nil)
	ok, err = f.st.RenewalStillDue(f.ctx, sub.ID, 1)
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestDeactivationEmailListsLinkedThatEndWithIt(t *testing.T) {
	f := seeded(t)
	withContacts(t, f)
	parent, app := subscription("parent"), subscription("app")
	app.ParentSubscriptionID = &parent.ID
	f.save(t, purchase(parent), nil)
	f.save(t, purchase(app), nil)
	parent.LinkedSubscriptionIDs, parent.Version = []string{app.ID}, 2
	parent.Status, parent.Version = domain.StatusDeactivated, 3
	f.save(t, domain.Change{Subscription: parent, Events: []domain.Event{
		{SubscriptionID: parent.ID, Key: "parent:deactivated", At: t0, Type: "deactivated", Actor: "agent:alice"}}}, nil)
	// The app's own cascade deactivation sends no second email.
	app.Status, app.Version = domain.StatusDeactivated, 2
	f.save(t, domain.Change{Subscription: app, Events: []domain.Event{
		{SubscriptionID: app.ID, Key: "app:deactivated", At: t0, Type: "deactivated", Actor: "system",
			Detail: map[string]any{"reason": "parent_ended"}}}}, nil)

	due, err := f.st.ClaimDueEmails(f.ctx, 50, time.Minute)
	require.NoError(t, err)
	var ended []store.PendingEmail
	for _, d := range due {
		if d.Kind == email.KindSubscriptionEnded {
			ended = append(ended, d)
		}
	}
	require.Len(t, ended, 2, "one per contact, for the parent only")
	d, err := ended[0].Data()
	require.NoError(t, err)
	require.Len(t, d.Linked, 1)
	assert.Equal(t, app.ID, d.Linked[0].ID)
	assert.Equal(t, "Contoso Analytics", d.Linked[0].OfferName)
}

func TestEmailLeaseAndRetry(t *testing.T) {
	f := seeded(t)
	withContacts(t, f)
	due, err := f.st.ClaimDueEmails(f.ctx, 50, time.Minute)
	require.NoError(t, err)
	require.Len(t, due, 2)
	again, err := f.st.ClaimDueEmails(f.ctx, 50, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, again, "leased emails are not claimed twice")
	require.NoError(t, f.st.MarkEmailFailed(f.ctx, due[0].ID, time.Now().Add(-time.Second), "421 try later"))
	require.NoError(t, f.st.MarkEmailSent(f.ctx, due[1].ID))
	again, err = f.st.ClaimDueEmails(f.ctx, 50, time.Minute)
	require.NoError(t, err)
	require.Len(t, again, 1)
	assert.Equal(t, due[0].ID, again[0].ID)
	assert.Equal(t, 1, again[0].Attempts)
}

// An app deactivated because its parent was cancelled is emailed on its own:
// a cancellation sends no email that could list it.
func TestAppOfCancelledParentIsEmailedItself(t *testing.T) {
	f := seeded(t)
	withContacts(t, f)
	parent, app := subscription("parent"), subscription("app")
	app.ParentSubscriptionID = &parent.ID
	f.save(t, purchase(parent), nil)
	f.save(t, purchase(app), nil)
	parent.Status, parent.Version = domain.StatusCancelled, 2
	f.save(t, domain.Change{Subscription: parent, Events: []domain.Event{
		{SubscriptionID: parent.ID, Key: "parent:cancelled", At: t0, Type: "cancelled", Actor: "agent:alice"}}}, nil)
	app.Status, app.Version = domain.StatusDeactivated, 2
	f.save(t, domain.Change{Subscription: app, Events: []domain.Event{
		{SubscriptionID: app.ID, Key: "app:deactivated", At: t0, Type: "deactivated", Actor: "system",
			Detail: map[string]any{"reason": "parent_ended"}}}}, nil)
	assert.Equal(t, 2, f.count(t, "email_outbox WHERE kind = 'subscription_ended' AND subscription_id = 'app'"))
	assert.Zero(t, f.count(t, "email_outbox WHERE kind = 'subscription_ended' AND subscription_id = 'parent'"))
}

// A transition whose catalog rows are missing still saves: the emails name
// the offer and plan by id, and the reminder uses the default lead time.
func TestEmailsNeverHoldATransitionUp(t *testing.T) {
	f := seeded(t)
	withContacts(t, f)
	sub := subscription("sub-1")
	sub.PlanID = "no-such-plan"
	f.save(t, purchase(sub), nil)
	act := activation(sub)
	f.save(t, act, nil)
	due, err := f.st.ClaimDueEmails(f.ctx, 50, time.Minute)
	require.NoError(t, err)
	var order *store.PendingEmail
	for i := range due {
		if due[i].Kind == email.KindOrderPlaced {
			order = &due[i]
		}
	}
	require.NotNil(t, order)
	d, err := order.Data()
	require.NoError(t, err)
	assert.Equal(t, "no-such-plan", d.PlanName)
	assert.Equal(t, 2, f.count(t, "email_outbox WHERE kind = 'renewal_reminder' AND send_after = $1", act.Subscription.TermEnd.Add(-7*24*time.Hour)))
}
