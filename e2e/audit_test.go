package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/workflows"
)

// auditRow is one row of audit_log.
type auditRow struct {
	Actor   string `db:"actor"`
	Tenant  string `db:"tenant"`
	Action  string `db:"action"`
	Outcome string `db:"outcome"`
	Detail  string `db:"detail"`
}

// After a full run, the audit log records every security-relevant moment with
// actor, tenant, action and outcome; and no API key, signing secret or
// authorization code appears in any process's log, in any workflow history
// (what ops see in the Temporal UI), or in the audit log and timeline.
func TestAuditAndSecrets(t *testing.T) {
	t.Parallel()
	started := time.Now()
	var mu sync.Mutex
	var notified []string // notification types the publisher received
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var n struct{ Type string }
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &n)
		mu.Lock()
		notified = append(notified, n.Type)
		mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	w := newWorld(t, testenv.StackOptions{Seed: seed(hook.URL)})

	// The run: purchases, the publisher's callbacks (with both active secrets),
	// a bad key, a role refusal, a bad signature, a cancellation.
	var codes []string
	p := w.buy(t, "analytics", "annual", 5)
	id := p.Str("id")
	codes = append(codes, trustCode(t, p))
	nw := w.other.Purchase(map[string]any{"customer_id": "tailspin", "offer_id": "docs", "plan_id": "annual", "quantity": 1})
	require.Equal(t, http.StatusCreated, nw.Status, nw.String())
	codes = append(codes, trustCode(t, nw))
	codes = append(codes, trustCode(t, trustSubscription(t, w.admin, id)))

	r := w.contoso.Send("/v1/publisher/resolve", map[string]any{"authorization_code": codes[0]})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	rotated := w.Publisher("contoso", ContosoSecret2)
	r = rotated.Send("/v1/publisher/subscriptions/"+id+"/licenses", map[string]any{"assigned": 3})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	r = w.contoso.Send("/v1/publisher/subscriptions/"+id+"/activate", map[string]any{"site_url": "https://woodgrove.contoso.example"})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	require.Equal(t, "active", r.Str("status"))

	badKey := AdminKey + "x"
	r = w.Partner(badKey).Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	mustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
	r = w.sales.Do(http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil)
	mustProblem(t, r, http.StatusForbidden, "forbidden_role")
	wrongSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("e2e-an-attackers-guess-of-a-key"))
	r = w.Publisher("contoso", wrongSecret).Send("/v1/publisher/subscriptions/"+id+"/licenses", map[string]any{"assigned": 5})
	mustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
	r = w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	require.Equal(t, "cancelled", r.Str("status"))
	// The notifier has signed and sent what the run produced (purchases carry codes).
	testenv.WaitFor(t, 30*time.Second, "the cancellation notification", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(notified, " "), "subscription.cancelled")
	})

	t.Run("audit log", func(t *testing.T) {
		var rows []auditRow
		require.NoError(t, w.Store.DB().Select(&rows, `SELECT actor, tenant, action, outcome, detail::text AS detail FROM audit_log ORDER BY id`))
		find := func(what string, match func(auditRow) bool) auditRow {
			t.Helper()
			for _, row := range rows {
				if match(row) {
					assert.NotEmpty(t, row.Actor, what)
					assert.NotEmpty(t, row.Action, what)
					assert.NotEmpty(t, row.Outcome, what)
					return row
				}
			}
			t.Errorf("no audit row for %s in %+v", what, rows)
			return auditRow{}
		}
		auth := find("the unknown API key", func(r auditRow) bool { return r.Action == "authenticate" && r.Outcome == "denied" })
		assert.Equal(t, "anonymous", auth.Actor)
		assert.Equal(t, "", auth.Tenant, "an unknown key names no tenant")

		role := find("the role refusal", func(r auditRow) bool { return r.Outcome == "forbidden_role" })
		assert.Equal(t, "agent:fabrikam/bob", role.Actor)
		assert.Equal(t, "fabrikam", role.Tenant)
		assert.Equal(t, "cancel", role.Action)
		assert.Contains(t, role.Detail, id)

		sig := find("the bad signature", func(r auditRow) bool { return r.Action == "verify_signature" })
		assert.Equal(t, "publisher:contoso", sig.Actor)
		assert.Equal(t, "contoso", sig.Tenant)
		assert.Equal(t, "denied", sig.Outcome)

		cancel := find("the cancellation", func(r auditRow) bool { return r.Action == "cancel" && r.Outcome == "ok" })
		assert.Equal(t, "agent:fabrikam/alice", cancel.Actor)
		assert.Equal(t, "fabrikam", cancel.Tenant)
		assert.Contains(t, cancel.Detail, id)

		// Exactly the refusals of this run, no more: the good callbacks and reads are not "denied".
		var denied int
		for _, row := range rows {
			if row.Outcome == "denied" || row.Outcome == "forbidden_role" {
				denied++
			}
		}
		assert.Equal(t, 3, denied, "%+v", rows)
	})

	t.Run("no secret anywhere", func(t *testing.T) {
		secrets := map[string]string{
			"admin API key": AdminKey, "sales API key": SalesKey, "northwind API key": OtherAdminKey, "the bad API key": badKey,
			"SECRET_KEY": envValue(w.Env, "SECRET_KEY"),
		}
		for name, whsec := range map[string]string{"contoso secret": ContosoSecret, "contoso second secret": ContosoSecret2,
			"litware secret": LitwareSecret, "the wrong secret": wrongSecret} {
			b64 := strings.TrimPrefix(whsec, "whsec_")
			raw, err := base64.StdEncoding.DecodeString(b64)
			require.NoError(t, err)
			secrets[name] = whsec
			secrets[name+" (base64 part)"] = b64
			secrets[name+" (key bytes)"] = string(raw)
		}
		for i, code := range codes {
			secrets["authorization code "+string(rune('A'+i))] = code
		}
		for name, v := range secrets {
			require.GreaterOrEqual(t, len(v), 16, "%s is too short to search for", name)
		}

		haystacks := map[string][]byte{"process logs": []byte(w.Logs())}
		var ids []string
		require.NoError(t, w.Store.DB().Select(&ids, `SELECT id FROM subscriptions ORDER BY id`))
		require.Len(t, ids, 2)
		c := w.Temporal.Client(t)
		for _, sid := range ids {
			for run, events := range workflowRuns(t, c, workflows.WorkflowID(sid)) {
				var text, wire bytes.Buffer
				for _, e := range events {
					js, err := protojson.Marshal(e)
					require.NoError(t, err)
					text.Write(js)
					text.WriteByte('\n')
					// Payload data is bytes, base64 in protojson: search the wire form too.
					bin, err := proto.Marshal(e)
					require.NoError(t, err)
					wire.Write(bin)
				}
				haystacks["history of "+sid+" run "+run] = text.Bytes()
				haystacks["history of "+sid+" run "+run+" (wire)"] = wire.Bytes()
				// The search works: the history does name its subscription.
				require.Contains(t, wire.String(), sid)
			}
		}
		for table, query := range map[string]string{
			"audit_log": `SELECT coalesce(string_agg(row_to_json(a)::text, E'\n'), '') FROM audit_log a`,
			"events":    `SELECT coalesce(string_agg(row_to_json(e)::text, E'\n'), '') FROM events e`,
		} {
			var dump string
			require.NoError(t, w.Store.DB().Get(&dump, query))
			haystacks["table "+table] = []byte(dump)
		}
		require.Contains(t, string(haystacks["process logs"]), id, "the logs cover the run")

		for where, hay := range haystacks {
			for name, secret := range secrets {
				assert.False(t, bytes.Contains(hay, []byte(secret)), "%s appears in the %s", name, where)
			}
		}
		t.Logf("searched %d secrets in %d places", len(secrets), len(haystacks))
	})
	t.Logf("TestAuditAndSecrets took %s", time.Since(started).Round(time.Millisecond))
}

// workflowRuns returns the events of every run of a workflow, following
// continue-as-new back from the latest run.
func workflowRuns(t *testing.T, c client.Client, workflowID string) map[string][]*historypb.HistoryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	desc, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	require.NoError(t, err)
	runs := map[string][]*historypb.HistoryEvent{}
	for runID := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(); runID != ""; {
		iter := c.GetWorkflowHistory(ctx, workflowID, runID, false, 0)
		var events []*historypb.HistoryEvent
		for iter.HasNext() {
			e, err := iter.Next()
			require.NoError(t, err)
			events = append(events, e)
		}
		require.NotEmpty(t, events, "history of %s run %s", workflowID, runID)
		runs[runID] = events
		runID = events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
	}
	return runs
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}
