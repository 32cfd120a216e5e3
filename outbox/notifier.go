package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
	"github.com/partnerhub/fulfillment/wire"
)

// Notifier delivers the outbox that transitions fill: each notification is
// POSTed, signed per Standard Webhooks with every active secret of the
// publisher, until the publisher answers 2xx. The webhook-id is the outbox
// id, the same on every retry. Delivery runs beside the workflow rather than
// as workflow activities so a slow publisher never grows a subscription's
// history.
//
// Publishers are delivered to in parallel (up to Concurrency at once), each
// one's notifications one after another, so a publisher that is slow or hangs
// holds only its own notifications back. Each claim leases a publisher's
// batch, and every attempt ends before its lease does, so two dispatchers
// never send the same notification at the same time.
type Notifier struct {
	Store    *store.Store
	Vault    *vault.Vault
	Client   *http.Client // NewWebhookClient in production
	Logger   *slog.Logger
	Interval time.Duration // how often the outbox is polled (default 250 ms)
	MaxDelay time.Duration // cap of the retry backoff (default 10 min)
	// Concurrency is how many publishers are delivered to at once (default 8).
	Concurrency int
	// Batch is how many notifications of one publisher a claim takes (default 5).
	Batch int
	// RequestTimeout bounds one attempt (default 10 s).
	RequestTimeout time.Duration
	// Lease is how long a claim holds its notifications (default 1 min).
	Lease time.Duration
	now   func() time.Time

	mu    sync.Mutex
	busy  map[string]bool // publishers with a batch in flight
	lanes sync.WaitGroup
	wake  chan struct{}
}

func (n *Notifier) defaults() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.busy != nil {
		return
	}
	if n.Interval == 0 {
		n.Interval = 250 * time.Millisecond
	}
	if n.MaxDelay == 0 {
		n.MaxDelay = 10 * time.Minute
	}
	if n.Concurrency == 0 {
		n.Concurrency = 8
	}
	if n.Batch == 0 {
		n.Batch = 5
	}
	if n.RequestTimeout == 0 {
		n.RequestTimeout = 10 * time.Second
	}
	if n.Lease == 0 {
		n.Lease = time.Minute
	}
	if n.Client == nil {
		n.Client = NewWebhookClient(WebhookClientOptions{Timeout: n.RequestTimeout})
	}
	n.busy = map[string]bool{}
	n.wake = make(chan struct{}, 1)
}

// Run delivers until ctx ends, then waits for the attempts in flight (they
// end with ctx). While the outbox cannot be read (PostgreSQL down) it backs
// off, logging now and then, not on every poll.
func (n *Notifier) Run(ctx context.Context) {
	n.defaults()
	defer n.lanes.Wait()
	failures := 0
	for {
		delay := n.Interval
		if _, err := n.dispatch(ctx); err != nil && ctx.Err() == nil {
			failures++
			delay = min(n.Interval<<min(failures, 10), 30*time.Second)
			if failures&(failures-1) == 0 || failures%100 == 0 { // 1, 2, 4, 8, … then every 100th
				n.Logger.Warn("deliver notifications", "error", err, "failures", failures, "retry_in", delay.String())
			}
		} else {
			failures = 0
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-n.wake:
			timer.Stop()
		}
	}
}

// DeliverDue sends every notification due now and returns once each was
// attempted.
func (n *Notifier) DeliverDue(ctx context.Context) error {
	n.defaults()
	for {
		claimed, err := n.dispatch(ctx)
		n.lanes.Wait()
		if err != nil || claimed == 0 {
			return err
		}
	}
}

// dispatch claims a batch for each free lane and starts delivering it.
func (n *Notifier) dispatch(ctx context.Context) (int, error) {
	n.mu.Lock()
	free := n.Concurrency - len(n.busy)
	skip := make([]string, 0, len(n.busy))
	for p := range n.busy {
		skip = append(skip, p)
	}
	n.mu.Unlock()
	if free <= 0 {
		return 0, nil
	}
	leaseEnd := time.Now().Add(n.Lease)
	due, err := n.Store.ClaimDueNotificationsByPublisher(ctx, store.NotificationClaim{
		Publishers: free, PerPublisher: n.Batch, Skip: skip, Lease: n.Lease,
	})
	if err != nil {
		return 0, err
	}
	var order []string
	batches := map[string][]store.PendingNotification{}
	for _, p := range due {
		if _, ok := batches[p.PublisherID]; !ok {
			order = append(order, p.PublisherID)
		}
		batches[p.PublisherID] = append(batches[p.PublisherID], p)
	}
	n.mu.Lock()
	for _, pub := range order {
		n.busy[pub] = true
	}
	n.mu.Unlock()
	for _, pub := range order {
		n.lanes.Add(1)
		go n.lane(ctx, pub, batches[pub], leaseEnd)
	}
	return len(due), nil
}

// lane delivers one publisher's batch in order. An attempt that could not end
// before the lease does is not started: the notification comes due again
// when its lease ends.
func (n *Notifier) lane(ctx context.Context, publisherID string, batch []store.PendingNotification, leaseEnd time.Time) {
	defer func() {
		n.mu.Lock()
		delete(n.busy, publisherID)
		n.mu.Unlock()
		n.lanes.Done()
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}()
	const margin = 2 * time.Second // clock and database latency between the lease and the attempt
	for _, p := range batch {
		deadline := time.Now().Add(n.RequestTimeout)
		if last := leaseEnd.Add(-margin); last.Before(deadline) {
			deadline = last
		}
		if !deadline.After(time.Now()) || ctx.Err() != nil {
			return
		}
		attempt, cancel := context.WithDeadline(ctx, deadline)
		err := n.deliver(attempt, p)
		cancel()
		if err != nil && ctx.Err() != nil {
			return // shutting down: the lease runs out and another attempt follows
		}
		n.record(ctx, p, err)
	}
}

// record marks the outcome of an attempt, even while shutting down (a
// delivered notification should not be sent again for want of a mark).
func (n *Notifier) record(ctx context.Context, p store.PendingNotification, deliverErr error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if deliverErr == nil {
		if err := n.Store.MarkNotificationDelivered(ctx, p.ID); err != nil {
			n.Logger.Warn("mark notification delivered", "webhook_id", p.ID, "error", err)
		}
		return
	}
	delay := n.backoff(p.Attempts)
	n.Logger.Info("notification not delivered", "webhook_id", p.ID, "type", p.Type,
		"subscription_id", p.SubscriptionID, "attempt", p.Attempts+1, "retry_in", delay, "error", deliverErr)
	if err := n.Store.MarkNotificationFailed(ctx, p.ID, time.Now().Add(delay), deliverErr.Error()); err != nil {
		n.Logger.Warn("mark notification failed", "webhook_id", p.ID, "error", err)
	}
}

func (n *Notifier) clock() time.Time {
	if n.now == nil {
		return time.Now()
	}
	return n.now()
}

// backoff doubles from one second up to MaxDelay, with jitter.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := time.Second << min(attempts, 20)
	if d > n.MaxDelay {
		d = n.MaxDelay
	}
	return d/2 + rand.N(d/2+1)
}

func (n *Notifier) deliver(ctx context.Context, p store.PendingNotification) error {
	pub, err := n.Store.Publisher(ctx, p.PublisherID)
	if err != nil {
		return fmt.Errorf("publisher %s: %w", p.PublisherID, err)
	}
	if pub.WebhookURL == nil {
		return nil // the publisher stopped taking webhooks: nothing to deliver
	}
	sub, err := n.snapshot(ctx, p)
	if err != nil {
		return err
	}
	var link *wire.PublisherLink
	if p.Type == domain.NotifyPurchased {
		link = wire.NewPublisherLink(pub.LandingURL, n.Vault.AuthorizationCode(sub.ID), sub.ActivationDeadline)
	}
	note := wire.Notification{
		Type: p.Type, ID: p.ID, OccurredAt: p.OccurredAt, Subscription: wire.NewSubscription(sub, p.OccurredAt, link),
	}
	if len(p.Data) > 0 {
		if err := json.Unmarshal(p.Data, &note.Data); err != nil {
			return fmt.Errorf("data of %s: %w", p.ID, err)
		}
	}
	body, err := json.Marshal(note)
	if err != nil {
		return err
	}
	signers, err := n.signers(ctx, p.PublisherID)
	if err != nil {
		return err
	}
	ts := n.clock()
	// One signature per active secret, space-separated (Standard Webhooks):
	// while a publisher rotates, its endpoint verifies with whichever secret
	// it holds.
	signatures := make([]string, 0, len(signers))
	for _, signer := range signers {
		sig, err := signer.Sign(p.ID, ts, body)
		if err != nil {
			return err
		}
		signatures = append(signatures, sig)
	}
	signature := strings.Join(signatures, " ")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *pub.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(standardwebhooks.HeaderWebhookID, p.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(ts.Unix()))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, signature)
	resp, err := n.Client.Do(req)
	if err != nil {
		return redactURL(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("publisher answered %d", resp.StatusCode)
	}
	return nil
}

// snapshot is the subscription as of the event; rows queued before snapshots
// were kept fall back to the current read model.
func (n *Notifier) snapshot(ctx context.Context, p store.PendingNotification) (domain.Subscription, error) {
	var sub domain.Subscription
	if len(p.Snapshot) > 0 {
		if err := json.Unmarshal(p.Snapshot, &sub); err != nil {
			return sub, fmt.Errorf("snapshot of %s: %w", p.ID, err)
		}
		return sub, nil
	}
	sub, err := n.Store.Subscription(ctx, p.SubscriptionID)
	if err != nil {
		return sub, fmt.Errorf("subscription %s: %w", p.SubscriptionID, err)
	}
	if p.Type == domain.NotifyPurchased {
		sub.Status = domain.StatusPendingFulfillment // the link belongs to the purchase as it was
	}
	return sub, nil
}

// signers are the publisher's active secrets, newest first.
func (n *Notifier) signers(ctx context.Context, publisherID string) ([]*standardwebhooks.Webhook, error) {
	sealed, err := n.Store.PublisherSecrets(ctx, publisherID, n.clock())
	if err != nil {
		return nil, err
	}
	if len(sealed) == 0 {
		return nil, errors.New("publisher has no signing secret")
	}
	signers := make([]*standardwebhooks.Webhook, 0, len(sealed))
	for _, s := range sealed {
		secret, err := n.Vault.Open(s)
		if err != nil {
			return nil, fmt.Errorf("open signing secret: %w", err)
		}
		signer, err := standardwebhooks.NewWebhook(string(secret))
		if err != nil {
			return nil, err
		}
		signers = append(signers, signer)
	}
	return signers, nil
}

// redactURL keeps a publisher's webhook credentials out of logs and the
// outbox's last_error: the client's errors quote the whole URL, and some
// publishers put a token in its query or user info. What remains (scheme,
// host, path) still tells ops which endpoint failed.
func redactURL(err error) error {
	var urlErr *url.Error
	if !errors.As(err, &urlErr) {
		return err
	}
	if u, perr := url.Parse(urlErr.URL); perr == nil {
		u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
		return &url.Error{Op: urlErr.Op, URL: u.String(), Err: urlErr.Err}
	}
	return &url.Error{Op: urlErr.Op, URL: "(webhook URL)", Err: urlErr.Err}
}
