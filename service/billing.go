package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/workflows"
)

// BillingUsage is the help of `fulfillment billing`.
const BillingUsage = `usage: fulfillment billing payment-failed|payment-received --subscription ID --operator NAME [--reason TEXT] [--message-id ID]

  payment-failed    suspend an active subscription for non-payment: the publisher is told,
                    nothing renews, the customer's contacts are emailed; it ends (unsubscribed)
                    unless paid within its plan's payment grace period (default 30 days)
  payment-received  reinstate a suspended subscription, with the same term dates

A message id (default: a new one) makes a repeated command take effect once.
`

// Billing reports a payment event of the partner's billing system to the
// subscription's workflow (an Update), audited.
func Billing(ctx context.Context, cfg config.Config, args []string, out io.Writer, logger *slog.Logger) error {
	update := map[string]string{"payment-failed": workflows.UpdatePaymentFailed, "payment-received": workflows.UpdatePaymentReceived}
	if len(args) == 0 || update[args[0]] == "" {
		fmt.Fprint(out, BillingUsage)
		return errors.New("unknown billing command")
	}
	fs := flag.NewFlagSet("billing "+args[0], flag.ContinueOnError)
	fs.SetOutput(out)
	id := fs.String("subscription", "", "subscription id")
	operator := fs.String("operator", os.Getenv("USER"), "who runs the command (recorded)")
	reason := fs.String("reason", "", "why (recorded on the timeline)")
	messageID := fs.String("message-id", "", "the message's id (default: new)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *id == "" || *operator == "" {
		fmt.Fprint(out, BillingUsage)
		return errors.New("--subscription and --operator are required")
	}
	if *messageID == "" {
		*messageID = uuid.NewString()
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	sub, err := st.Subscription(ctx, *id)
	if err != nil {
		return fmt.Errorf("subscription %s: %w", *id, err)
	}
	opts, err := cfg.TemporalOptions(logger)
	if err != nil {
		return err
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("connect Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer tc.Close()

	actor := workflows.Actor{Kind: "operator", ID: *operator}
	msg := workflows.PaymentRequest{MessageID: "billing:" + *messageID, Actor: actor, Reason: *reason}
	var after domain.Subscription
	handle, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.WorkflowID(sub.ID), UpdateID: msg.MessageID, UpdateName: update[args[0]],
		Args: []any{msg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = handle.Get(ctx, &after)
	}
	outcome := "ok"
	if err != nil {
		outcome = "refused"
	}
	action := "billing." + update[args[0]]
	logger.Info("audit", "actor", actor.String(), "tenant", sub.PartnerID, "action", action, "outcome", outcome, "subscription_id", sub.ID)
	if aerr := st.RecordAudit(ctx, store.AuditEntry{Actor: actor.String(), Tenant: sub.PartnerID, Action: action, Outcome: outcome,
		Detail: map[string]any{"subscription_id": sub.ID, "reason": *reason}}); aerr != nil {
		logger.Warn("record audit", "error", aerr)
	}
	if code, detail, ok := workflows.ProblemCode(err); ok {
		return fmt.Errorf("%s: %s", code, detail)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is %s\n", sub.ID, after.Status)
	return nil
}
