package store

import "context"

// AuditEntry is one security-relevant action.
type AuditEntry struct {
	Actor   string         `db:"actor"`
	Tenant  string         `db:"tenant"`
	Action  string         `db:"action"`
	Outcome string         `db:"outcome"`
	Detail  map[string]any `db:"-"`
}

// RecordAudit appends to the audit log.
func (s *Store) RecordAudit(ctx context.Context, e AuditEntry) error {
	detail, err := jsonObject(e.Detail)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `
		INSERT INTO audit_log (actor, tenant, action, outcome, detail) VALUES ($1,$2,$3,$4,$5)`,
		e.Actor, e.Tenant, e.Action, e.Outcome, detail)
	return wrap(err, "record audit %s", e.Action)
}
