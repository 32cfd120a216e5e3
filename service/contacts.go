package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/store"
)

// ContactsUsage documents `fulfillment contacts`.
const ContactsUsage = `usage: fulfillment contacts set-primary --partner ID --customer ID --email ADDRESS --operator NAME [--reason TEXT]

Reassigns a customer's primary contact (e.g. when the primary contact has left
the company) to the existing contact with ADDRESS. Operators only: partners and
publishers never change contacts. Recorded on the customer's timeline and in
the audit log.
`

// Contacts runs the operator's contact commands.
func Contacts(ctx context.Context, cfg config.Config, args []string, out io.Writer, logger *slog.Logger) error {
	if len(args) == 0 || args[0] != "set-primary" {
		fmt.Fprint(out, ContactsUsage)
		return errors.New("unknown contacts command")
	}
	fs := flag.NewFlagSet("contacts set-primary", flag.ContinueOnError)
	fs.SetOutput(out)
	partner := fs.String("partner", "", "partner id")
	customer := fs.String("customer", "", "customer id")
	email := fs.String("email", "", "email of the contact to make primary")
	operator := fs.String("operator", os.Getenv("USER"), "who runs the command (recorded)")
	reason := fs.String("reason", "", "why (recorded)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *partner == "" || *customer == "" || *email == "" || *operator == "" {
		fmt.Fprint(out, ContactsUsage)
		return errors.New("--partner, --customer, --email and --operator are required")
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	ref := store.CustomerRef{PartnerID: *partner, CustomerID: *customer}
	actor := "operator:" + *operator
	contact, err := st.SetPrimaryByOperator(ctx, ref, *email, *operator, *reason)
	outcome := "ok"
	if err != nil {
		outcome = "refused"
	}
	logger.Info("audit", "actor", actor, "tenant", *partner, "action", "contacts.set_primary", "outcome", outcome,
		"customer_id", *customer)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("customer %s of partner %s has no contact %s", *customer, *partner, *email)
	case err != nil:
		return err
	}
	fmt.Fprintf(out, "%s (%s) is now the primary contact of %s/%s\n", contact.Email, contact.ID, *partner, *customer)
	return nil
}
