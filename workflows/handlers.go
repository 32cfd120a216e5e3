package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/domain"
)

// registerHandlers runs before the first blocking call so no early message is
// rejected as unknown. Validators only read state; handlers apply one
// transition under the lock and answer with the subscription after it.
func (w *subscriptionWorkflow) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (domain.Subscription, error) {
		return w.st.Subscription, nil
	}); err != nil {
		return err
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		ch := workflow.GetSignalChannel(ctx, SignalParentEnded)
		for {
			var msg ParentEnded
			ch.Receive(ctx, &msg)
			w.st.ParentEnded = true
		}
	})
	updates := []struct {
		name      string
		handler   any
		validator any
	}{
		{UpdatePurchase, w.onPurchase, nil},
		{UpdateAssignLicenses, w.onLicenses, w.validateLicenses},
		{UpdateConfirmFulfillment, w.onFulfillment, w.validateFulfillment},
		{UpdateChange, w.onChange, w.validateChange},
		{UpdateCancel, w.onCancel, w.validateCancel},
		{UpdateDeactivate, w.onDeactivate, w.validateDeactivate},
		{UpdateLink, w.onLink, w.validateLink},
	}
	for _, u := range updates {
		opts := workflow.UpdateHandlerOptions{Validator: u.validator}
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, opts); err != nil {
			return err
		}
	}
	return nil
}

// onPurchase answers the API's update-with-start once the purchase is recorded.
func (w *subscriptionWorkflow) onPurchase(ctx workflow.Context) (domain.Subscription, error) {
	err := workflow.Await(ctx, func() bool { return w.st.Recorded })
	return w.st.Subscription, err
}

func (w *subscriptionWorkflow) validateLicenses(ctx workflow.Context, req LicensesRequest) error {
	if w.handled(req.MessageID) {
		return nil
	}
	return w.checkLicenses(req)
}

func (w *subscriptionWorkflow) checkLicenses(req LicensesRequest) error {
	s := w.st.Subscription
	if s.Status.Terminal() {
		return problem(ErrInvalidState, "subscription is %s", s.Status)
	}
	if req.Assigned < 1 || req.Assigned > s.Quantity {
		return problem(ErrValidationFailed, "assigned must be between 1 and the quantity %d", s.Quantity)
	}
	return nil
}

func (w *subscriptionWorkflow) onLicenses(ctx workflow.Context, req LicensesRequest) (domain.Subscription, error) {
	return w.apply(ctx, req.MessageID, func() error { return w.checkLicenses(req) }, func(c *domain.Change) {
		s := &w.st.Subscription
		now := clock(ctx)
		s.LicensesAssigned = req.Assigned
		c.Events = append(c.Events, w.event(now, "licenses_assigned", req.Actor.String(), map[string]any{"assigned": req.Assigned}))
		w.maybeStartBilling(now, c)
	})
}

func (w *subscriptionWorkflow) validateFulfillment(ctx workflow.Context, req FulfillmentRequest) error {
	if w.handled(req.MessageID) {
		return nil
	}
	return w.checkNotTerminal()
}

func (w *subscriptionWorkflow) checkNotTerminal() error {
	if s := w.st.Subscription; s.Status.Terminal() {
		return problem(ErrInvalidState, "subscription is %s", s.Status)
	}
	return nil
}

func (w *subscriptionWorkflow) onFulfillment(ctx workflow.Context, req FulfillmentRequest) (domain.Subscription, error) {
	s := &w.st.Subscription
	if s.Status == domain.StatusActive && s.FulfillmentConfirmed {
		return *s, nil // confirming again has no effect
	}
	return w.apply(ctx, req.MessageID, w.checkNotTerminal, func(c *domain.Change) {
		now := clock(ctx)
		s.FulfillmentConfirmed = true
		if req.SiteURL != nil {
			s.SiteURL = req.SiteURL
		}
		c.Events = append(c.Events, w.event(now, "fulfillment_confirmed", req.Actor.String(), map[string]any{"site_url": s.SiteURL}))
		w.maybeStartBilling(now, c)
	})
}

// maybeStartBilling starts the first term once both callbacks are in.
func (w *subscriptionWorkflow) maybeStartBilling(now time.Time, c *domain.Change) {
	s := &w.st.Subscription
	if s.Status != domain.StatusPendingFulfillment || s.LicensesAssigned == 0 || !s.FulfillmentConfirmed {
		return
	}
	s.Status = domain.StatusActive
	s.BillingStartedAt = &now
	s.TermNumber = 1
	w.startTerm(now)
	charge := w.termCharge(now)
	c.Ledger = append(c.Ledger, charge)
	c.Events = append(c.Events, w.event(now, "billing_started", SystemActor.String(), map[string]any{
		"amount_minor": charge.AmountMinor, "currency": charge.Currency, "term_end": s.TermEnd,
	}))
	c.Notifications = append(c.Notifications, w.notify(now, domain.NotifyActivated)...)
}

func (w *subscriptionWorkflow) validateChange(ctx workflow.Context, req ChangeRequest) error {
	if w.handled(req.MessageID) {
		return nil
	}
	return w.checkChange(workflow.Now(ctx), req)
}

func (w *subscriptionWorkflow) checkChange(now time.Time, req ChangeRequest) error {
	s := w.st.Subscription
	if err := w.checkNotTerminal(); err != nil {
		return err
	}
	if req.Quantity != nil {
		q, p := *req.Quantity, w.st.Plan
		if q < p.MinQuantity || q > p.MaxQuantity {
			return problem(ErrValidationFailed, "quantity must be between %d and %d", p.MinQuantity, p.MaxQuantity)
		}
		if q < s.Quantity && !s.InCancellationWindow(now) {
			return problem(ErrCancellationWindowClosed, "quantity can only decrease inside the cancellation window, which closed at %s", s.CancellationWindowEndsAt.Format(time.RFC3339))
		}
		if q < s.LicensesAssigned {
			return problem(ErrValidationFailed, "quantity %d is below the %d licenses assigned", q, s.LicensesAssigned)
		}
	}
	return nil
}

func (w *subscriptionWorkflow) onChange(ctx workflow.Context, req ChangeRequest) (domain.Subscription, error) {
	nicknameChanged := false
	sub, err := w.apply(ctx, req.MessageID, func() error { return w.checkChange(workflow.Now(ctx), req) }, func(c *domain.Change) {
		s := &w.st.Subscription
		now := clock(ctx)
		actor := req.Actor.String()
		if req.Quantity != nil && *req.Quantity != s.Quantity {
			from := s.Quantity
			s.Quantity = *req.Quantity
			detail := map[string]any{"from": from, "to": s.Quantity}
			if entry, ok := w.proration(now, s.Quantity-from, req.MessageID); ok {
				c.Ledger = append(c.Ledger, entry)
				detail["proration_minor"] = entry.AmountMinor
			}
			c.Events = append(c.Events, w.event(now, "quantity_changed", actor, detail))
			c.Notifications = append(c.Notifications, w.notify(now, domain.NotifyQuantityChanged)...)
		}
		if req.Nickname != nil || req.ClearNickname {
			s.Nickname = req.Nickname
			nicknameChanged = true
			c.Events = append(c.Events, w.event(now, "nickname_changed", actor, map[string]any{"nickname": s.Nickname}))
		}
		if req.AutoRenew != nil && *req.AutoRenew != s.AutoRenew {
			s.AutoRenew = *req.AutoRenew
			c.Events = append(c.Events, w.event(now, "auto_renew_changed", actor, map[string]any{"auto_renew": s.AutoRenew}))
		}
		if req.ResellerPartnerID != nil || req.ClearReseller {
			s.ResellerPartnerID = req.ResellerPartnerID
			c.Events = append(c.Events, w.event(now, "reseller_changed", actor, map[string]any{"reseller_partner_id": s.ResellerPartnerID}))
		}
	})
	if err == nil && nicknameChanged {
		err = workflow.UpsertMemo(ctx, Memo(sub, w.st.Plan))
	}
	return sub, err
}

func (w *subscriptionWorkflow) validateCancel(ctx workflow.Context, req EndRequest) error {
	if w.handled(req.MessageID) {
		return nil
	}
	return w.checkCancel(workflow.Now(ctx))
}

func (w *subscriptionWorkflow) checkCancel(now time.Time) error {
	if err := w.checkNotTerminal(); err != nil {
		return err
	}
	if s := w.st.Subscription; !s.InCancellationWindow(now) {
		return problem(ErrCancellationWindowClosed, "the cancellation window closed at %s; turn off auto_renew instead", s.CancellationWindowEndsAt.Format(time.RFC3339))
	}
	return nil
}

func (w *subscriptionWorkflow) onCancel(ctx workflow.Context, req EndRequest) (domain.Subscription, error) {
	return w.endByMessage(ctx, req, func() error { return w.checkCancel(workflow.Now(ctx)) }, domain.StatusCancelled)
}

func (w *subscriptionWorkflow) validateDeactivate(ctx workflow.Context, req EndRequest) error {
	if w.handled(req.MessageID) {
		return nil
	}
	return w.checkNotTerminal()
}

func (w *subscriptionWorkflow) onDeactivate(ctx workflow.Context, req EndRequest) (domain.Subscription, error) {
	return w.endByMessage(ctx, req, w.checkNotTerminal, domain.StatusDeactivated)
}

// endByMessage ends the subscription on behalf of a message, once.
func (w *subscriptionWorkflow) endByMessage(ctx workflow.Context, req EndRequest, check func() error, status domain.Status) (domain.Subscription, error) {
	if err := w.awaitRecorded(ctx); err != nil {
		return w.st.Subscription, err
	}
	err := w.locked(ctx, func() error {
		if w.handled(req.MessageID) {
			return nil
		}
		if err := check(); err != nil {
			return err
		}
		w.markHandled(req.MessageID)
		return w.end(ctx, status, req.Actor, nil)
	})
	return w.st.Subscription, err
}

func (w *subscriptionWorkflow) validateLink(ctx workflow.Context, req LinkRequest) error {
	if slices.Contains(w.st.Subscription.LinkedSubscriptionIDs, req.SubscriptionID) {
		return nil
	}
	return w.checkLink(req)
}

func (w *subscriptionWorkflow) checkLink(req LinkRequest) error {
	s := w.st.Subscription
	switch {
	case s.Status.Terminal():
		return problem(ErrValidationFailed, "parent subscription is %s and takes no new links", s.Status)
	case s.CustomerID != req.CustomerID || s.PartnerID != req.PartnerID:
		return problem(ErrValidationFailed, "parent subscription belongs to another customer")
	}
	return nil
}

func (w *subscriptionWorkflow) onLink(ctx workflow.Context, req LinkRequest) (domain.Subscription, error) {
	if slices.Contains(w.st.Subscription.LinkedSubscriptionIDs, req.SubscriptionID) {
		return w.st.Subscription, nil
	}
	return w.apply(ctx, "", func() error { return w.checkLink(req) }, func(c *domain.Change) {
		s := &w.st.Subscription
		s.LinkedSubscriptionIDs = append(s.LinkedSubscriptionIDs, req.SubscriptionID)
		c.Events = append(c.Events, w.event(clock(ctx), "subscription_linked", SystemActor.String(),
			map[string]any{"subscription_id": req.SubscriptionID}))
	})
}

// apply runs one message's transition under the lock: it re-checks the state
// (it may have changed since validation), mutates, saves, and upserts the
// status search attribute when the status moved. A message id seen before
// answers with the current state and changes nothing.
func (w *subscriptionWorkflow) apply(ctx workflow.Context, messageID string, check func() error, mutate func(*domain.Change)) (domain.Subscription, error) {
	if err := w.awaitRecorded(ctx); err != nil {
		return w.st.Subscription, err
	}
	err := w.locked(ctx, func() error {
		if w.handled(messageID) {
			return nil
		}
		if err := check(); err != nil {
			return err
		}
		before := w.st.Subscription.Status
		var c domain.Change
		mutate(&c)
		w.markHandled(messageID)
		if len(c.Events) == 0 {
			return nil
		}
		if _, err := w.save(ctx, c); err != nil {
			return err
		}
		if after := w.st.Subscription.Status; after != before {
			return workflow.UpsertTypedSearchAttributes(ctx, statusKey.ValueSet(string(after)))
		}
		return nil
	})
	return w.st.Subscription, err
}

func (w *subscriptionWorkflow) awaitRecorded(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return w.st.Recorded })
}
