package outbox_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/email"
	"github.com/partnerhub/fulfillment/outbox"
	"github.com/partnerhub/fulfillment/seed"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/vault"
)

// lostAnswer hands the first message of each id to the server, then reports
// a failure anyway, as when the connection drops before the server's "250 OK".
type lostAnswer struct {
	email.Sender
	mu   sync.Mutex
	seen map[string]int
}

func (l *lostAnswer) Send(ctx context.Context, m email.Message) error {
	err := l.Sender.Send(ctx, m)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[m.ID]++
	if err == nil && l.seen[m.ID] == 1 {
		return errors.New("connection reset before the answer")
	}
	return err
}

// A purchase's emails reach a real SMTP server; a retry after a lost answer
// sends the very same Message-ID, and the set-up link carries the code.
func TestMailerSendsWithStableMessageID(t *testing.T) {
	ctx := context.Background()
	st, _ := testenv.Database(t)
	mp := testenv.StartMailpit(t)
	v, err := vault.Parse(testenv.SecretKey())
	require.NoError(t, err)
	f, err := seed.Parse([]byte(`{"publishers":[{"id":"contoso","name":"Contoso","landing_url":"https://contoso.example/setup",
	  "webhook_url":null,"signing_secret":"` + secret + `"}],
	  "offers":[{"id":"analytics","publisher_id":"contoso","name":"Contoso Analytics","kind":"saas","parent_offer_ids":[],
	    "plans":[{"id":"annual","name":"Annual","term":"P1Y","unit_price_minor":100,"currency":"USD","min_quantity":1,
	      "max_quantity":10,"cancellation_window":"P7D","activation_deadline":"P30D"}]}],
	  "partners":[{"id":"fabrikam","name":"Fabrikam","agents":[]}],
	  "customers":[{"id":"woodgrove","partner_id":"fabrikam","name":"Woodgrove Bank"}]}`))
	require.NoError(t, err)
	require.NoError(t, seed.Load(ctx, st, v, f))
	_, _, err = st.AssignFirstContact(ctx, store.CustomerRef{PartnerID: "fabrikam", CustomerID: "woodgrove"}, "ann@woodgrove.example", "agent:alice")
	require.NoError(t, err)

	now := time.Now().UTC().Truncate(time.Microsecond)
	sub := domain.Subscription{ID: "sub-1", PartnerID: "fabrikam", CustomerID: "woodgrove", PublisherID: "contoso",
		OfferID: "analytics", PlanID: "annual", Quantity: 2, AutoRenew: true, LinkedSubscriptionIDs: []string{},
		EntitlementNumber: domain.EntitlementNumber("sub-1"), Status: domain.StatusPendingFulfillment,
		ActivationDeadline: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, Version: 1}
	_, err = st.SaveChange(ctx, domain.Change{Subscription: sub, Events: []domain.Event{
		{SubscriptionID: sub.ID, Key: "sub-1:1", At: now, Type: "purchased", Actor: "agent:alice"}}}, nil)
	require.NoError(t, err)

	smtp, err := email.NewSMTP(mp.SMTPURL(), "Subscriptions <no-reply@fulfillment.test>", "fulfillment.test")
	require.NoError(t, err)
	m := &outbox.Mailer{Store: st, Vault: v, Sender: &lostAnswer{Sender: smtp, seen: map[string]int{}},
		Logger: slog.New(slog.DiscardHandler), PortalURL: "http://portal.test/portal/"}
	require.NoError(t, m.SendDue(ctx))                                              // both reach the server, both "fail"
	st.DB().MustExecContext(ctx, `UPDATE email_outbox SET next_attempt_at = now()`) // skip the backoff
	require.NoError(t, m.SendDue(ctx))
	require.NoError(t, m.SendDue(ctx)) // nothing left to send

	msgs := mp.WaitMessages(t, 10*time.Second, "four deliveries", func(ms []testenv.MailSummary) bool { return len(ms) >= 4 })
	require.Len(t, msgs, 4, "two emails, each delivered twice")
	bySubject := map[string][]testenv.MailSummary{}
	for _, s := range msgs {
		bySubject[s.Subject] = append(bySubject[s.Subject], s)
		require.Len(t, s.To, 1)
		assert.Equal(t, "ann@woodgrove.example", s.To[0].Address)
		assert.Equal(t, "no-reply@fulfillment.test", s.From.Address)
	}
	welcome := bySubject["Welcome: you are a contact of Woodgrove Bank"]
	order := bySubject["New order for Woodgrove Bank: Contoso Analytics"]
	require.Len(t, welcome, 2)
	require.Len(t, order, 2)
	assert.Equal(t, welcome[0].MessageID, welcome[1].MessageID, "a retry is the same message")
	assert.Equal(t, order[0].MessageID, order[1].MessageID, "a retry is the same message")
	assert.NotEqual(t, welcome[0].MessageID, order[0].MessageID)
	assert.True(t, strings.HasSuffix(order[0].MessageID, "@fulfillment.test"), order[0].MessageID)

	full := mp.Message(t, order[0].ID)
	link := "https://contoso.example/setup?token=" + v.AuthorizationCode("sub-1")
	assert.Contains(t, full.Text, link)
	assert.Contains(t, full.HTML, `href="`+link+`"`)
	assert.Contains(t, full.Text, "Fabrikam has placed an order for Woodgrove Bank")
	w := mp.Message(t, welcome[0].ID)
	assert.Contains(t, w.HTML, `href="http://portal.test/portal/"`)
	assert.Contains(t, w.Text, "primary contact of Woodgrove Bank")

	var unsent int
	require.NoError(t, st.DB().Get(&unsent, `SELECT count(*) FROM email_outbox WHERE sent_at IS NULL`))
	assert.Zero(t, unsent)
}

// A renewal reminder for a subscription that no longer renews is skipped, not sent.
func TestMailerSkipsStaleRenewalReminder(t *testing.T) {
	ctx := context.Background()
	st, _ := testenv.Database(t)
	v, err := vault.Parse(testenv.SecretKey())
	require.NoError(t, err)
	f, err := seed.Parse([]byte(`{"publishers":[{"id":"contoso","name":"Contoso","landing_url":"https://contoso.example/setup",
	  "webhook_url":null,"signing_secret":"` + secret + `"}],
	  "offers":[{"id":"analytics","publisher_id":"contoso","name":"Contoso Analytics","kind":"saas","parent_offer_ids":[],
	    "plans":[{"id":"annual","name":"Annual","term":"PT1M","unit_price_minor":100,"currency":"USD","min_quantity":1,
	      "max_quantity":10,"cancellation_window":"PT10S","activation_deadline":"P30D"}]}],
	  "partners":[{"id":"fabrikam","name":"Fabrikam","agents":[]}],
	  "customers":[{"id":"woodgrove","partner_id":"fabrikam","name":"Woodgrove Bank"}]}`))
	require.NoError(t, err)
	require.NoError(t, seed.Load(ctx, st, v, f))
	_, _, err = st.AssignFirstContact(ctx, store.CustomerRef{PartnerID: "fabrikam", CustomerID: "woodgrove"}, "ann@woodgrove.example", "agent:alice")
	require.NoError(t, err)
	st.DB().MustExecContext(ctx, `UPDATE email_outbox SET sent_at = now()`) // the welcome is not the point here

	now := time.Now().UTC().Truncate(time.Microsecond)
	end := now.Add(time.Minute)
	sub := domain.Subscription{ID: "sub-1", PartnerID: "fabrikam", CustomerID: "woodgrove", PublisherID: "contoso",
		OfferID: "analytics", PlanID: "annual", Quantity: 2, AutoRenew: true, LinkedSubscriptionIDs: []string{},
		EntitlementNumber: domain.EntitlementNumber("sub-1"), Status: domain.StatusActive, TermNumber: 1,
		TermStart: &now, TermEnd: &end, ActivationDeadline: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, Version: 1}
	_, err = st.SaveChange(ctx, domain.Change{Subscription: sub, Events: []domain.Event{
		{SubscriptionID: sub.ID, Key: "sub-1:3", At: now, Type: "billing_started", Actor: "system"}}}, nil)
	require.NoError(t, err)
	sub.AutoRenew, sub.Version = false, 2
	_, err = st.SaveChange(ctx, domain.Change{Subscription: sub}, nil)
	require.NoError(t, err)
	st.DB().MustExecContext(ctx, `UPDATE email_outbox SET next_attempt_at = now() WHERE kind = 'renewal_reminder'`) // due now

	sent := &recording{}
	m := &outbox.Mailer{Store: st, Vault: v, Sender: sent, Logger: slog.New(slog.DiscardHandler)}
	require.NoError(t, m.SendDue(ctx))
	assert.Empty(t, sent.got)
	var skipped int
	require.NoError(t, st.DB().Get(&skipped, `SELECT count(*) FROM email_outbox WHERE kind = 'renewal_reminder' AND skipped_at IS NOT NULL`))
	assert.Equal(t, 1, skipped)
}

type recording struct {
	mu  sync.Mutex
	got []email.Message
}

func (r *recording) Send(_ context.Context, m email.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, m)
	return nil
}

// A recipient the server refuses for good (550) is not retried forever; a
// temporary refusal (451) is retried.
func TestMailerGivesUpOnUndeliverableOnly(t *testing.T) {
	ctx := context.Background()
	st, _ := testenv.Database(t)
	v, err := vault.Parse(testenv.SecretKey())
	require.NoError(t, err)
	f, err := seed.Parse([]byte(`{"publishers":[],"offers":[],"partners":[{"id":"fabrikam","name":"Fabrikam","agents":[]}],
	  "customers":[{"id":"woodgrove","partner_id":"fabrikam","name":"Woodgrove Bank"}]}`))
	require.NoError(t, err)
	require.NoError(t, seed.Load(ctx, st, v, f))
	_, _, err = st.AssignFirstContact(ctx, store.CustomerRef{PartnerID: "fabrikam", CustomerID: "woodgrove"}, "ann@woodgrove.example", "agent:alice")
	require.NoError(t, err)

	state := func() (attempts int, skipped bool) {
		require.NoError(t, st.DB().QueryRowx(`SELECT attempts, skipped_at IS NOT NULL FROM email_outbox`).Scan(&attempts, &skipped))
		return
	}
	send := func(mp *testenv.Mailpit) {
		smtp, err := email.NewSMTP(mp.SMTPURL(), "no-reply@fulfillment.test", "fulfillment.test")
		require.NoError(t, err)
		m := &outbox.Mailer{Store: st, Vault: v, Sender: smtp, Logger: slog.New(slog.DiscardHandler)}
		st.DB().MustExecContext(ctx, `UPDATE email_outbox SET next_attempt_at = now()`)
		require.NoError(t, m.SendDue(ctx))
	}
	send(testenv.StartMailpit(t, "--enable-chaos", "--chaos-triggers", "Recipient:451:100"))
	attempts, skipped := state()
	assert.Equal(t, 1, attempts)
	assert.False(t, skipped, "451 is temporary: retried later")
	send(testenv.StartMailpit(t, "--enable-chaos", "--chaos-triggers", "Recipient:550:100"))
	_, skipped = state()
	assert.True(t, skipped, "550: no such mailbox, given up")
}
