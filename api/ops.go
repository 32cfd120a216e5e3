package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/wire"
)

// authenticateOps admits the bearer of the ops key (OPS_API_KEY), compared
// in constant time. A partner's key is recognised and refused with 403 (it
// is a valid credential without the role); anything else fails
// authentication like a bad partner key (401, the failed-auth budget).
// Without OPS_API_KEY nobody is admitted.
func (s *Server) authenticateOps(c *gin.Context) {
	key, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		s.failedAuthentication(c, "anonymous", "", "authenticate", "missing bearer key",
			problem(CodeUnauthenticated, "send the ops key as Authorization: Bearer <key>"))
		return
	}
	if s.OpsKey != "" {
		got, want := sha256.Sum256([]byte(key)), sha256.Sum256([]byte(s.OpsKey)) // equal lengths: no length leak
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			c.Set(tenantKey, "ops")
			c.Next()
			return
		}
	}
	agent, err := s.agentByKey(c.Request.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		s.failedAuthentication(c, "anonymous", "", "authenticate", "unknown key", problem(CodeUnauthenticated, "unknown API key"))
		return
	}
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.Set(tenantKey, agent.PartnerID)
	s.audit(c, agentActor(agent).String(), agent.PartnerID, "ops.read", "forbidden_role", map[string]any{"path": c.FullPath()})
	writeProblem(c, problem(CodeForbiddenRole, "ops endpoints take the ops key, not a partner's"))
}

// latestReconciliation answers GET /v1/ops/reconciliation/latest: the latest
// completed report with a page of its findings (?limit=, ?cursor=).
func (s *Server) latestReconciliation(c *gin.Context) {
	limit, err := queryLimit(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	var after *store.FindingCursor
	if v := c.Query("cursor"); v != "" {
		if after, err = decodeFindingCursor(v); err != nil {
			writeProblem(c, problem(CodeInvalidRequest, "cursor is not one this API returned"))
			return
		}
	}
	ctx := c.Request.Context()
	r, err := s.Store.LatestReconciliation(ctx)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(c, problem(CodeNotFound, "no reconciliation has completed yet"))
		return
	} else if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	findings, next, err := s.Store.ReconciliationFindings(ctx, r.ID, after, limit)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	out := wire.ReconciliationReport{ID: r.ID, WorkflowID: r.WorkflowID, Status: r.Status, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		PendingThreshold: r.PendingThreshold, Checked: r.Checked, Counts: map[string]int{}, Findings: make([]wire.Finding, 0, len(findings))}
	for _, kind := range domain.FindingKinds {
		out.Counts[kind] = r.Counts[kind]
		out.FindingsTotal += r.Counts[kind]
	}
	for _, f := range findings {
		wf := wire.Finding{SubscriptionID: f.SubscriptionID, Kind: f.Kind, Detail: f.Detail, WorkflowValue: f.WorkflowValue, ReadModelValue: f.ReadModelValue}
		if f.TermNumber != 0 {
			term := f.TermNumber
			wf.TermNumber = &term
		}
		out.Findings = append(out.Findings, wf)
	}
	if next != nil {
		cur := encodeFindingCursor(*next)
		out.NextCursor = &cur
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// A findings cursor is opaque to clients, like the other cursors.
func encodeFindingCursor(f store.FindingCursor) string {
	raw, _ := json.Marshal([]any{f.SubscriptionID, f.Kind, f.TermNumber})
	return base64.RawURLEncoding.EncodeToString(append([]byte("f:"), raw...))
}

func decodeFindingCursor(cursor string) (*store.FindingCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !strings.HasPrefix(string(raw), "f:") {
		return nil, errors.New("bad cursor")
	}
	var parts []json.RawMessage
	var f store.FindingCursor
	if err := json.Unmarshal(raw[2:], &parts); err != nil || len(parts) != 3 ||
		json.Unmarshal(parts[0], &f.SubscriptionID) != nil || json.Unmarshal(parts[1], &f.Kind) != nil ||
		json.Unmarshal(parts[2], &f.TermNumber) != nil || !lookupable(f.SubscriptionID) || !lookupable(f.Kind) {
		return nil, errors.New("bad cursor")
	}
	return &f, nil
}
