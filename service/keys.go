package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
)

// KeysUsage documents `fulfillment keys`.
const KeysUsage = `usage: fulfillment keys <command>

  agent create PARTNER AGENT [-role admin_agent|sales_agent]
        a new API key for the agent (created, as sales_agent unless -role, if missing); printed once
  agent rotate PARTNER AGENT [-overlap 24h]
        a new API key; the agent's other keys stop working after the overlap (0s: at once)
  agent revoke PARTNER AGENT
        every key of the agent stops working now
  agent email PARTNER AGENT ADDRESS
        the address the agent signs in to the portal with ("-" removes it)
  publisher rotate PUBLISHER [-overlap 24h]
        a new signing secret; the other secrets stop verifying after the overlap; printed once
  publisher revoke PUBLISHER FINGERPRINT
        that secret stops verifying now
  publisher list PUBLISHER
        fingerprints and expiry of the publisher's secrets (never the secrets)
  billing rotate PARTNER [-overlap 24h]
        a new signing secret for the partner's billing system (POST /v1/billing/events);
        the other billing secrets stop verifying after the overlap; printed once
  billing revoke PARTNER FINGERPRINT
        that billing secret stops verifying now
  billing list PARTNER
        fingerprints and expiry of the partner's billing secrets (never the secrets)

Only the new key or secret is printed, on stdout; every action is audited.
`

// Keys runs `fulfillment keys ARGS`, printing a newly created credential (and
// nothing else secret) to stdout.
func Keys(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return usageError()
	}
	commands := map[string]func(*keys, context.Context, []string) error{
		"agent create":     func(k *keys, ctx context.Context, a []string) error { return k.agentKey(ctx, "create", a) },
		"agent rotate":     func(k *keys, ctx context.Context, a []string) error { return k.agentKey(ctx, "rotate", a) },
		"agent revoke":     (*keys).revokeAgent,
		"agent email":      (*keys).agentEmail,
		"publisher rotate": rotateSecret(publisherSecrets),
		"publisher revoke": revokeSecret(publisherSecrets),
		"publisher list":   listSecrets(publisherSecrets),
		"billing rotate":   rotateSecret(billingSecrets),
		"billing revoke":   revokeSecret(billingSecrets),
		"billing list":     listSecrets(billingSecrets),
	}
	command, ok := commands[args[0]+" "+args[1]]
	if !ok {
		return usageError()
	}
	v, err := vault.Parse(cfg.SecretKey)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	k := &keys{st: st, v: v, logger: logger, out: stdout, actor: operator()}
	return command(k, ctx, args[2:])
}

func usageError() error {
	fmt.Fprint(os.Stderr, KeysUsage)
	return errors.New("usage: fulfillment keys agent|publisher|billing ...")
}

type keys struct {
	st     *store.Store
	v      *vault.Vault
	logger *slog.Logger
	out    io.Writer
	actor  string
}

// operator names who ran the command in the audit log.
func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "cli:" + name + "@" + host
}

// parse reads positional arguments then flags (fulfillment keys agent rotate P A -overlap 1h).
func parse(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	fs.SetOutput(io.Discard)
	if len(args) < positional {
		return nil, usageError()
	}
	for _, a := range args[:positional] {
		if strings.HasPrefix(a, "-") { // flags go after the names
			return nil, usageError()
		}
	}
	if err := fs.Parse(args[positional:]); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, KeysUsage)
	}
	if fs.NArg() != 0 {
		return nil, usageError()
	}
	return args[:positional], nil
}

// audit records a credential action in audit_log and in the log.
func (k *keys) audit(ctx context.Context, tenant, action, outcome string, detail map[string]any) error {
	k.logger.Info("audit", "actor", k.actor, "tenant", tenant, "action", action, "outcome", outcome)
	return k.st.RecordAudit(ctx, store.AuditEntry{Actor: k.actor, Tenant: tenant, Action: action, Outcome: outcome, Detail: detail})
}

func (k *keys) agentKey(ctx context.Context, verb string, args []string) error {
	fs := flag.NewFlagSet("keys agent "+verb, flag.ContinueOnError)
	role := fs.String("role", "", "admin_agent or sales_agent (create)")
	overlap := fs.Duration("overlap", 24*time.Hour, "how long the old keys keep working (rotate)")
	pos, err := parse(fs, args, 2)
	if err != nil {
		return err
	}
	partnerID, agentID := pos[0], pos[1]
	r := domain.Role(*role)
	if r != "" && r != domain.RoleAdminAgent && r != domain.RoleSalesAgent {
		return fmt.Errorf("-role must be admin_agent or sales_agent")
	}
	if *overlap < 0 {
		return fmt.Errorf("-overlap may not be negative")
	}
	if _, err := k.st.Partner(ctx, partnerID); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no partner %q", partnerID)
	} else if err != nil {
		return err
	}
	if verb == "rotate" {
		if _, err := k.st.Agent(ctx, partnerID, agentID); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no agent %s/%s to rotate (create it with keys agent create)", partnerID, agentID)
		} else if err != nil {
			return err
		}
	}
	key, err := vault.GenerateAPIKey()
	if err != nil {
		return err
	}
	hash := k.v.KeyHash(key)
	agent, err := k.st.CreateAgentKey(ctx, partnerID, agentID, r, hash)
	if err != nil {
		return err
	}
	detail := map[string]any{"agent_id": agentID, "role": string(agent.Role), "key_fingerprint": vault.Fingerprint(key)}
	if verb == "rotate" {
		n, err := k.st.RevokeAgentKeys(ctx, partnerID, agentID, hash, *overlap)
		if err != nil {
			return err
		}
		detail["old_keys_revoked"], detail["overlap"] = n, overlap.String()
	}
	if err := k.audit(ctx, partnerID, "keys.agent."+verb, "ok", detail); err != nil {
		return err
	}
	_, err = fmt.Fprintln(k.out, key)
	return err
}

func (k *keys) revokeAgent(ctx context.Context, args []string) error {
	pos, err := parse(flag.NewFlagSet("keys agent revoke", flag.ContinueOnError), args, 2)
	if err != nil {
		return err
	}
	partnerID, agentID := pos[0], pos[1]
	if _, err := k.st.Agent(ctx, partnerID, agentID); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no agent %s/%s", partnerID, agentID)
	} else if err != nil {
		return err
	}
	n, err := k.st.RevokeAgentKeys(ctx, partnerID, agentID, nil, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "revoked %d key(s) of %s/%s\n", n, partnerID, agentID)
	return k.audit(ctx, partnerID, "keys.agent.revoke", "ok", map[string]any{"agent_id": agentID, "keys_revoked": n})
}

// agentEmail sets (or with "-" removes) the portal sign-in address of an agent.
func (k *keys) agentEmail(ctx context.Context, args []string) error {
	pos, err := parse(flag.NewFlagSet("keys agent email", flag.ContinueOnError), args, 3)
	if err != nil {
		return err
	}
	partnerID, agentID := pos[0], pos[1]
	if _, err := k.st.Agent(ctx, partnerID, agentID); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no agent %s/%s", partnerID, agentID)
	} else if err != nil {
		return err
	}
	var address *string
	if pos[2] != "-" {
		address = &pos[2]
	}
	if err := k.st.SetAgentEmail(ctx, partnerID, agentID, address); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "portal sign-in address of %s/%s set\n", partnerID, agentID)
	return k.audit(ctx, partnerID, "keys.agent.email", "ok", map[string]any{"agent_id": agentID, "email": pos[2]})
}

func (k *keys) publisher(ctx context.Context, id string) error {
	if _, err := k.st.Publisher(ctx, id); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no publisher %q", id)
	} else if err != nil {
		return err
	}
	return nil
}

func (k *keys) partner(ctx context.Context, id string) error {
	if _, err := k.st.Partner(ctx, id); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no partner %q", id)
	} else if err != nil {
		return err
	}
	return nil
}

// secretOwner is who holds signing secrets the CLI manages: a publisher (its
// calls and our webhooks to it) or a partner's billing system. Both keep
// several sealed secrets at once so a rotation can overlap.
type secretOwner struct {
	command string // "publisher" or "billing": the command and the audit action
	idKey   string // the owner's id in audit details
	owner   string // how messages name the owner ("publisher", "partner")
	secret  string // and its secrets ("signing secret", "billing secret")
	tenant  func(id string) string
	exists  func(k *keys, ctx context.Context, id string) error
	add     func(st *store.Store, ctx context.Context, id, fingerprint string, sealed []byte) error
	expire  func(st *store.Store, ctx context.Context, id, keep string, at time.Time) error
	revoke  func(st *store.Store, ctx context.Context, id, fingerprint string, now time.Time) (bool, error)
	active  func(st *store.Store, ctx context.Context, id string, now time.Time) ([][]byte, error)
	infos   func(st *store.Store, ctx context.Context, id string) ([]store.SecretInfo, error)
}

var (
	publisherSecrets = secretOwner{
		command: "publisher", idKey: "publisher_id", owner: "publisher", secret: "signing secret",
		tenant: func(id string) string { return "publisher:" + id }, exists: (*keys).publisher,
		add: (*store.Store).AddPublisherSecret, expire: (*store.Store).ExpirePublisherSecrets,
		revoke: (*store.Store).RevokePublisherSecret, active: (*store.Store).PublisherSecrets,
		infos: (*store.Store).PublisherSecretInfos,
	}
	billingSecrets = secretOwner{
		command: "billing", idKey: "partner_id", owner: "partner", secret: "billing secret",
		tenant: func(id string) string { return id }, exists: (*keys).partner,
		add: (*store.Store).AddBillingSecret, expire: (*store.Store).ExpireBillingSecrets,
		revoke: (*store.Store).RevokeBillingSecret, active: (*store.Store).BillingSecrets,
		infos: (*store.Store).BillingSecretInfos,
	}
)

// rotateSecret issues a new signing secret: sealed, printed once on stdout,
// the owner's other secrets kept for -overlap.
func rotateSecret(o secretOwner) func(*keys, context.Context, []string) error {
	return func(k *keys, ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("keys "+o.command+" rotate", flag.ContinueOnError)
		overlap := fs.Duration("overlap", 24*time.Hour, "how long the old secrets keep verifying")
		pos, err := parse(fs, args, 1)
		if err != nil {
			return err
		}
		if *overlap < 0 {
			return fmt.Errorf("-overlap may not be negative")
		}
		id := pos[0]
		if err := o.exists(k, ctx, id); err != nil {
			return err
		}
		secret, err := vault.GenerateSigningSecret()
		if err != nil {
			return err
		}
		sealed, err := k.v.Seal([]byte(secret))
		if err != nil {
			return err
		}
		fingerprint := vault.Fingerprint(secret)
		if err := o.add(k.st, ctx, id, fingerprint, sealed); err != nil {
			return err
		}
		if err := o.expire(k.st, ctx, id, fingerprint, time.Now().Add(*overlap)); err != nil {
			return err
		}
		err = k.audit(ctx, o.tenant(id), "keys."+o.command+".rotate", "ok",
			map[string]any{o.idKey: id, "fingerprint": fingerprint, "overlap": overlap.String()})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(k.out, secret)
		return err
	}
}

// revokeSecret ends one secret now, warning when none is left.
func revokeSecret(o secretOwner) func(*keys, context.Context, []string) error {
	return func(k *keys, ctx context.Context, args []string) error {
		pos, err := parse(flag.NewFlagSet("keys "+o.command+" revoke", flag.ContinueOnError), args, 2)
		if err != nil {
			return err
		}
		id, fingerprint := pos[0], pos[1]
		if err := o.exists(k, ctx, id); err != nil {
			return err
		}
		ok, err := o.revoke(k.st, ctx, id, fingerprint, time.Now())
		if err != nil {
			return err
		}
		detail := map[string]any{o.idKey: id, "fingerprint": fingerprint}
		action := "keys." + o.command + ".revoke"
		if !ok {
			_ = k.audit(ctx, o.tenant(id), action, "not_found", detail)
			return fmt.Errorf("%s %s has no active %s %s", o.owner, id, o.secret, fingerprint)
		}
		if active, err := o.active(k.st, ctx, id, time.Now()); err == nil && len(active) == 0 {
			fmt.Fprintf(os.Stderr, "warning: %s %s has no active %s left; rotate to issue one\n", o.owner, id, o.secret)
		}
		return k.audit(ctx, o.tenant(id), action, "ok", detail)
	}
}

func listSecrets(o secretOwner) func(*keys, context.Context, []string) error {
	return func(k *keys, ctx context.Context, args []string) error {
		pos, err := parse(flag.NewFlagSet("keys "+o.command+" list", flag.ContinueOnError), args, 1)
		if err != nil {
			return err
		}
		if err := o.exists(k, ctx, pos[0]); err != nil {
			return err
		}
		infos, err := o.infos(k.st, ctx, pos[0])
		if err != nil {
			return err
		}
		k.printSecrets(infos)
		return nil
	}
}

// printSecrets lists fingerprints, state and expiry, never a secret.
func (k *keys) printSecrets(infos []store.SecretInfo) {
	now := time.Now()
	for _, s := range infos {
		state, expires := "active", "-"
		if s.ExpiresAt != nil {
			expires = s.ExpiresAt.UTC().Format(time.RFC3339)
			if !s.ExpiresAt.After(now) {
				state = "expired"
			}
		}
		fmt.Fprintf(k.out, "%s  %-7s  created %s  expires %s\n", s.Fingerprint, state, s.CreatedAt.UTC().Format(time.RFC3339), expires)
	}
}
