package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
	"github.com/partnerhub/fulfillment/wire"
)

// Notifier delivers the outbox that transitions fill: each notification is
// POSTed, signed per Standard Webhooks with the publisher's newest secret,
// until the publisher answers 2xx. The webhook-id is the outbox id, the same
// on every retry. Delivery runs beside the workflow rather than as workflow
// activities so a slow publisher never grows a subscription's history.
type Notifier struct {
	Store    *store.Store
	Vault    *vault.Vault
	Client   *http.Client
	Logger   *slog.Logger
	Interval time.Duration // how often the outbox is polled
	MaxDelay time.Duration // cap of the retry backoff
	now      func() time.Time
}

// Run delivers until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	if n.Interval == 0 {
		n.Interval = 250 * time.Millisecond
	}
	if n.MaxDelay == 0 {
		n.MaxDelay = 10 * time.Minute
	}
	ticker := time.NewTicker(n.Interval)
	defer ticker.Stop()
	for {
		if err := n.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			n.Logger.Warn("deliver notifications", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// DeliverDue sends every notification due now.
func (n *Notifier) DeliverDue(ctx context.Context) error {
	due, err := n.Store.ClaimDueNotifications(ctx, 50, time.Minute)
	if err != nil {
		return err
	}
	for _, p := range due {
		if err := n.deliver(ctx, p); err != nil {
			delay := n.backoff(p.Attempts)
			n.Logger.Info("notification not delivered", "webhook_id", p.ID, "type", p.Type,
				"subscription_id", p.SubscriptionID, "attempt", p.Attempts+1, "retry_in", delay, "error", err)
			if err := n.Store.MarkNotificationFailed(ctx, p.ID, time.Now().Add(delay), err.Error()); err != nil {
				return err
			}
			continue
		}
		if err := n.Store.MarkNotificationDelivered(ctx, p.ID); err != nil {
			return err
		}
	}
	return nil
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
	body, err := json.Marshal(wire.Notification{
		Type: p.Type, ID: p.ID, OccurredAt: p.OccurredAt, Subscription: wire.NewSubscription(sub, p.OccurredAt, link),
	})
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
		return err
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
