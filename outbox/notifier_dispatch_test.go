package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/outbox"
	"github.com/partnerhub/fulfillment/seed"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/vault"
)

// outboxWorld is a database with publishers whose webhooks point at the
// given URLs, and a way to queue notifications for them.
type outboxWorld struct {
	t  *testing.T
	st *store.Store
	v  *vault.Vault
}

func newOutboxWorld(t *testing.T, webhooks map[string]string) *outboxWorld {
	t.Helper()
	st, _ := testenv.Database(t)
	v, err := vault.Parse(testenv.SecretKey())
	require.NoError(t, err)
	var pubs []string
	for id, url := range webhooks {
		pubs = append(pubs, fmt.Sprintf(`{"id":%q,"name":%q,"landing_url":"https://%s.example/setup","webhook_url":%q,"signing_secret":%q}`,
			id, id, id, url, secret))
	}
	f, err := seed.Parse([]byte(`{"publishers":[` + strings.Join(pubs, ",") + `],"offers":[],"partners":[],"customers":[]}`))
	require.NoError(t, err)
	require.NoError(t, seed.Load(context.Background(), st, v, f))
	return &outboxWorld{t: t, st: st, v: v}
}

// queue adds a due notification straight to the outbox, as a transition would.
func (w *outboxWorld) queue(id, publisherID string) {
	w.t.Helper()
	now := time.Now().UTC()
	snapshot, err := json.Marshal(domain.Subscription{ID: "sub-" + id, PublisherID: publisherID, Status: domain.StatusActive,
		LinkedSubscriptionIDs: []string{}, CreatedAt: now, UpdatedAt: now})
	require.NoError(w.t, err)
	w.st.DB().MustExecContext(context.Background(), `
		INSERT INTO outbox (id, publisher_id, subscription_id, type, occurred_at, subscription) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, publisherID, "sub-"+id, domain.NotifyActivated, now, string(snapshot)) // JSON as text (binary_parameters)
}

func (w *outboxWorld) delivered(id string) bool {
	var at *time.Time
	require.NoError(w.t, w.st.DB().Get(&at, `SELECT delivered_at FROM outbox WHERE id = $1`, id))
	return at != nil
}

func (w *outboxWorld) notifier(concurrency int) *outbox.Notifier {
	return &outbox.Notifier{Store: w.st, Vault: w.v, Logger: slog.New(slog.DiscardHandler), Concurrency: concurrency,
		Interval: 20 * time.Millisecond, RequestTimeout: 30 * time.Second,
		Client: outbox.NewWebhookClient(outbox.WebhookClientOptions{AllowPrivate: true, Timeout: 30 * time.Second})}
}

// run starts the dispatcher until the test ends.
func run(t *testing.T, n *outbox.Notifier) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// timeline records what happened, in order.
type timeline struct {
	mu     sync.Mutex
	events []string
}

func (l *timeline) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *timeline) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// A publisher whose endpoint hangs holds back only its own notifications:
// another publisher's notification, queued while the slow one is in flight,
// is delivered before the slow request ends. (Delivered one after another,
// the fast one would wait for the slow request to finish.)
func TestSlowPublisherDoesNotDelayOthers(t *testing.T) {
	var events timeline
	slowStarted, fastDelivered := make(chan struct{}), make(chan struct{})
	var slowOnce, fastOnce sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		events.add("slow started")
		slowOnce.Do(func() { close(slowStarted) })
		select { // hangs until the other publisher was served (or the test gives up)
		case <-fastDelivered:
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
		events.add("slow answered")
	}))
	t.Cleanup(slow.Close)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		events.add("fast delivered")
		fastOnce.Do(func() { close(fastDelivered) })
	}))
	t.Cleanup(fast.Close)
	w := newOutboxWorld(t, map[string]string{"slowpub": slow.URL, "fastpub": fast.URL})
	run(t, w.notifier(4))

	w.queue("msg_slow", "slowpub")
	<-slowStarted
	w.queue("msg_fast", "fastpub")
	testenv.WaitFor(t, 60*time.Second, "both notifications delivered", func() bool {
		return w.delivered("msg_slow") && w.delivered("msg_fast")
	})
	assert.Equal(t, []string{"slow started", "fast delivered", "slow answered"}, events.all())
}

// One publisher's notifications go out one at a time (in the order they came
// due), while different publishers are served in parallel up to the cap.
func TestNotifierSerialPerPublisherParallelAcross(t *testing.T) {
	const publishers, each, limit = 4, 4, 3
	var inFlight, maxInFlight atomic.Int32
	perPublisher := map[string]*atomic.Int32{}
	var mu sync.Mutex
	order := map[string][]string{}
	webhooks := map[string]string{}
	release := make(chan struct{})
	for p := range publishers {
		id := fmt.Sprintf("pub%d", p)
		perPublisher[id] = &atomic.Int32{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := inFlight.Add(1)
			defer inFlight.Add(-1)
			for old := maxInFlight.Load(); now > old && !maxInFlight.CompareAndSwap(old, now); old = maxInFlight.Load() {
			}
			if perPublisher[id].Add(1) > 1 {
				t.Errorf("two deliveries to %s at once", id)
			}
			defer perPublisher[id].Add(-1)
			<-release // held until the cap has been reached
			mu.Lock()
			order[id] = append(order[id], r.Header.Get(standardwebhooks.HeaderWebhookID))
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		webhooks[id] = srv.URL
	}
	w := newOutboxWorld(t, webhooks)
	var ids []string
	for i := range each {
		for p := range publishers {
			id := fmt.Sprintf("msg_pub%d_%d", p, i)
			w.queue(id, fmt.Sprintf("pub%d", p))
			ids = append(ids, id)
		}
	}
	run(t, w.notifier(limit))
	testenv.WaitFor(t, 30*time.Second, "the cap reached", func() bool { return inFlight.Load() == limit })
	close(release)
	testenv.WaitFor(t, 60*time.Second, "every notification delivered", func() bool {
		for _, id := range ids {
			if !w.delivered(id) {
				return false
			}
		}
		return true
	})
	assert.EqualValues(t, limit, maxInFlight.Load(), "never more publishers at once than the cap")
	for p := range publishers {
		id := fmt.Sprintf("pub%d", p)
		var want []string
		for i := range each {
			want = append(want, fmt.Sprintf("msg_pub%d_%d", p, i))
		}
		assert.Equal(t, want, order[id], "%s got its notifications in order", id)
	}
}

// A publisher answering 302 has not taken the notification: the redirect is
// not followed, and the notification is retried later under the same id.
func TestNotifierTreatsRedirectAsFailedDelivery(t *testing.T) {
	target, hits := countingServer(t, http.StatusOK)
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	t.Cleanup(redirector.Close)
	w := newOutboxWorld(t, map[string]string{"movedpub": redirector.URL})
	w.queue("msg_moved", "movedpub")

	require.NoError(t, w.notifier(2).DeliverDue(context.Background()))
	var row struct {
		Attempts  int       `db:"attempts"`
		LastError string    `db:"last_error"`
		Next      time.Time `db:"next_attempt_at"`
	}
	require.NoError(t, w.st.DB().Get(&row, `SELECT attempts, last_error, next_attempt_at FROM outbox WHERE id = 'msg_moved'`))
	assert.False(t, w.delivered("msg_moved"))
	assert.Equal(t, 1, row.Attempts)
	assert.Contains(t, row.LastError, "302")
	assert.True(t, row.Next.After(time.Now()), "retried later, with backoff")
	assert.Zero(t, hits.Load(), "the redirect target was never called")
}

// Without the development switch, a publisher webhook on a private address
// is never called; the notification stays queued and is retried.
func TestNotifierRefusesPrivateWebhookByDefault(t *testing.T) {
	srv, hits := countingServer(t, http.StatusOK)
	w := newOutboxWorld(t, map[string]string{"localpub": srv.URL})
	w.queue("msg_local", "localpub")
	n := w.notifier(2)
	n.Client = outbox.NewWebhookClient(outbox.WebhookClientOptions{})
	require.NoError(t, n.DeliverDue(context.Background()))
	assert.False(t, w.delivered("msg_local"))
	assert.Zero(t, hits.Load())
	var lastError string
	require.NoError(t, w.st.DB().Get(&lastError, `SELECT last_error FROM outbox WHERE id = 'msg_local'`))
	assert.Contains(t, lastError, "refused")
}

// A failed delivery is logged and kept in last_error without the webhook
// URL's query or user info, where publishers put tokens.
func TestFailedDeliveryKeepsTheWebhookTokenOutOfLogsAndErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	dead := srv.URL
	srv.Close() // nothing listens there any more: the client's error quotes the URL
	hook := strings.Replace(dead, "http://", "http://user:hunter2@", 1) + "/hooks?token=s3cr3t-token"
	w := newOutboxWorld(t, map[string]string{"tokenpub": hook})
	w.queue("msg_token", "tokenpub")
	var logs strings.Builder
	var mu sync.Mutex
	n := w.notifier(1)
	n.Logger = slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(b)
	}), nil))
	require.NoError(t, n.DeliverDue(context.Background()))
	assert.False(t, w.delivered("msg_token"))
	var lastError string
	require.NoError(t, w.st.DB().Get(&lastError, `SELECT last_error FROM outbox WHERE id = 'msg_token'`))
	mu.Lock()
	logged := logs.String()
	mu.Unlock()
	for what, text := range map[string]string{"last_error": lastError, "log": logged} {
		assert.NotContains(t, text, "s3cr3t-token", what)
		assert.NotContains(t, text, "hunter2", what)
	}
	assert.Contains(t, lastError, strings.TrimPrefix(dead, "http://")+"/hooks", "ops still see which endpoint failed")
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
