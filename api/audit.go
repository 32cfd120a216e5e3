// The audit trail of security-relevant actions.

package api

import (
	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/store"
)

// audit records a security-relevant action; failures to record are logged.
func (s *Server) audit(c *gin.Context, actor, tenant, action, outcome string, detail map[string]any) {
	logger(c).Info("audit", "actor", actor, "tenant", tenant, "action", action, "outcome", outcome)
	err := s.Store.RecordAudit(c.Request.Context(), store.AuditEntry{Actor: actor, Tenant: tenant, Action: action, Outcome: outcome, Detail: detail})
	if err != nil {
		logger(c).Warn("record audit", "error", err)
	}
}
