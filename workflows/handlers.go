package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/domain"
)

// message is one Update the workflow takes: the id that deduplicates it, what
// it requires of the saved state (check, also run by the validator) and the
// transition it makes (apply, on a copy of the state). A message whose
// transition adds nothing is refused by the validator as a no-op, so it
// costs no history.
type message[Req any] struct {
	name  string
	id    func(Req) string
	check func(now time.Time, req Req) error
	apply func(t *transition, req Req)
}

// registerHandlers runs before the first blocking call so no early message is
// rejected as unknown.
func (w *subscriptionWorkflow) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (domain.Subscription, error) {
		return w.st.Subscription, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdatePurchase, w.onPurchase); err != nil {
		return err
	}
	return firstError(
		register(ctx, w, message[LicensesRequest]{
			name: UpdateAssignLicenses, id: func(r LicensesRequest) string { return r.MessageID },
			check: w.checkLicenses, apply: w.assignLicenses,
		}),
		register(ctx, w, message[FulfillmentRequest]{
			name: UpdateConfirmFulfillment, id: func(r FulfillmentRequest) string { return r.MessageID },
			check: notTerminal[FulfillmentRequest](w), apply: w.confirmFulfillment,
		}),
		register(ctx, w, message[ChangeRequest]{
			name: UpdateChange, id: func(r ChangeRequest) string { return r.MessageID },
			check: w.checkChange, apply: w.change,
		}),
		register(ctx, w, message[EndRequest]{
			name: UpdateCancel, id: func(r EndRequest) string { return r.MessageID },
			check: w.checkCancel, apply: endWith(domain.StatusCancelled),
		}),
		register(ctx, w, message[EndRequest]{
			name: UpdateDeactivate, id: func(r EndRequest) string { return r.MessageID },
			check: notTerminal[EndRequest](w), apply: endWith(domain.StatusDeactivated),
		}),
		register(ctx, w, message[PaymentRequest]{
			name: UpdatePaymentFailed, id: func(r PaymentRequest) string { return r.MessageID },
			check: w.checkStatus(domain.StatusActive, "only an active subscription can be suspended for non-payment"),
			apply: func(t *transition, r PaymentRequest) { t.suspend(r.Actor, r.Reason, r.OccurredAt) },
		}),
		register(ctx, w, message[PaymentRequest]{
			name: UpdatePaymentReceived, id: func(r PaymentRequest) string { return r.MessageID },
			check: w.checkStatus(domain.StatusSuspended, "only a suspended subscription can be reinstated"),
			apply: func(t *transition, r PaymentRequest) { t.reinstate(r.Actor, r.OccurredAt) },
		}),
		register(ctx, w, message[TransferRequest]{
			name: UpdateTransferBilling, id: func(r TransferRequest) string { return r.MessageID },
			check: notTerminal[TransferRequest](w), apply: transferBillingAccount,
		}),
		register(ctx, w, message[ChooseSiteRequest]{
			name: UpdateChooseSite, id: func(r ChooseSiteRequest) string { return r.MessageID },
			check: w.checkChooseSite, apply: chooseSite,
		}),
		register(ctx, w, message[PlanChangeRequest]{
			name: UpdateChangePlan, id: func(r PlanChangeRequest) string { return r.MessageID },
			check: w.checkPlanChange, apply: w.requestPlanChange,
		}),
		register(ctx, w, message[PlanChangeAnswer]{
			name: UpdateRefusePlanChange, id: func(r PlanChangeAnswer) string { return r.MessageID },
			check: w.checkPlanChangeAnswer, apply: w.refusePlanChange,
		}),
		register(ctx, w, message[PlanChangeAnswer]{
			name: UpdateAcceptPlanChange, id: func(r PlanChangeAnswer) string { return r.MessageID },
			check: w.checkPlanChangeAnswer, apply: w.acceptPlanChange,
		}),
		register(ctx, w, message[PlanChangeAnswer]{
			name: UpdateWithdrawPlanChange, id: func(r PlanChangeAnswer) string { return r.MessageID },
			check: w.checkPlanChangePending, apply: w.withdrawPlanChange,
		}),
		register(ctx, w, message[LinkRequest]{
			name: UpdateLink, id: func(LinkRequest) string { return "" },
			check: w.checkLink, apply: w.link,
		}),
	)
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// register installs one message's validator and handler. The validator only
// reads: a message seen before is accepted (its handler answers with the
// current state); otherwise the state must allow it and it must change
// something — judged on the state a write in flight leaves, when there is
// one. The handler applies it once, under the lock, re-checking the
// state (it may have moved since validation), and answers with the
// subscription after it.
func register[Req any](ctx workflow.Context, w *subscriptionWorkflow, m message[Req]) error {
	validator := func(ctx workflow.Context, req Req) error {
		if w.st.handled(m.id(req)) {
			return nil
		}
		if w.closing {
			return problem(ErrContinuingAsNew, "the subscription is moving to a new run; send the message again")
		}
		if w.inFlight != nil {
			// A write is in flight: judge the message on the state it leaves
			// (the read model may already show it; this run adopts it when
			// the write returns, and the write is retried until it lands).
			saved := w.st
			w.st = *w.inFlight
			defer func() { w.st = saved }()
			if w.st.handled(m.id(req)) {
				return nil
			}
		}
		if err := m.check(workflow.Now(ctx), req); err != nil {
			return err
		}
		if w.durable() {
			t := w.begin(ctx)
			m.apply(t, req)
			if !t.changed() {
				return noChange(w.st.Subscription)
			}
		}
		return nil
	}
	handler := func(ctx workflow.Context, req Req) (domain.Subscription, error) {
		w.updates++
		if err := w.awaitRecorded(ctx); err != nil {
			return w.st.Subscription, err
		}
		err := w.locked(ctx, func() error {
			id := m.id(req)
			if w.st.handled(id) {
				return nil
			}
			if err := m.check(workflow.Now(ctx), req); err != nil {
				return err
			}
			t := w.begin(ctx)
			m.apply(t, req)
			if !t.changed() {
				return nil
			}
			t.next.markHandled(id)
			_, err := w.commit(ctx, t)
			return err
		})
		return w.st.Subscription, err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, m.name, handler, workflow.UpdateHandlerOptions{Validator: validator})
}

// onPurchase answers the API's update-with-start once the purchase is recorded.
func (w *subscriptionWorkflow) onPurchase(ctx workflow.Context) (domain.Subscription, error) {
	err := w.awaitRecorded(ctx)
	return w.st.Subscription, err
}

func (w *subscriptionWorkflow) awaitRecorded(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return w.st.Recorded })
}

func (w *subscriptionWorkflow) checkNotTerminal() error {
	if s := w.st.Subscription; s.Status.Terminal() {
		return problem(ErrInvalidState, "subscription is %s", s.Status)
	}
	return nil
}

// checkStatus admits a message only in one status.
func (w *subscriptionWorkflow) checkStatus(want domain.Status, refusal string) func(time.Time, PaymentRequest) error {
	return func(time.Time, PaymentRequest) error {
		if s := w.st.Subscription; s.Status != want {
			return problem(ErrInvalidState, "%s; this one is %s", refusal, s.Status)
		}
		return nil
	}
}

// notTerminal is the check of messages any non-terminal subscription takes.
func notTerminal[Req any](w *subscriptionWorkflow) func(time.Time, Req) error {
	return func(time.Time, Req) error { return w.checkNotTerminal() }
}

func (w *subscriptionWorkflow) checkLicenses(_ time.Time, req LicensesRequest) error {
	if err := w.checkNotTerminal(); err != nil {
		return err
	}
	if q := w.st.Subscription.Quantity; req.Assigned < 1 || req.Assigned > q {
		return problem(ErrValidationFailed, "assigned must be between 1 and the quantity %d", q)
	}
	return nil
}

func (w *subscriptionWorkflow) assignLicenses(t *transition, req LicensesRequest) {
	s := t.sub()
	if w.durable() && s.LicensesAssigned == req.Assigned {
		return
	}
	s.LicensesAssigned = req.Assigned
	t.event(domain.EventLicensesAssigned, req.Actor.String(), map[string]any{"assigned": req.Assigned})
	t.startBilling()
}

func (w *subscriptionWorkflow) confirmFulfillment(t *transition, req FulfillmentRequest) {
	s := t.sub()
	if s.Status == domain.StatusActive && s.FulfillmentConfirmed {
		return // confirming again has no effect
	}
	if w.durable() && s.FulfillmentConfirmed && (req.SiteURL == nil || equal(s.SiteURL, req.SiteURL)) {
		return
	}
	s.FulfillmentConfirmed = true
	if req.SiteURL != nil {
		s.SiteURL = req.SiteURL
	}
	t.event(domain.EventFulfillmentConfirmed, req.Actor.String(), map[string]any{"site_url": s.SiteURL})
	t.startBilling()
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
		if pp := w.st.PendingPlan; pp != nil && (q < pp.Plan.MinQuantity || q > pp.Plan.MaxQuantity) {
			return problem(ErrValidationFailed, "a change to plan %q is pending, which allows a quantity between %d and %d",
				pp.Plan.ID, pp.Plan.MinQuantity, pp.Plan.MaxQuantity)
		}
	}
	if req.BillingFrequency != nil {
		return w.checkFrequency(*req.BillingFrequency)
	}
	return nil
}

// change applies a PATCH. Fields set to their current value change nothing
// (runs before durableSave still record a nickname or reseller set again).
func (w *subscriptionWorkflow) change(t *transition, req ChangeRequest) {
	s := t.sub()
	actor := req.Actor.String()
	if req.Quantity != nil && *req.Quantity != s.Quantity {
		from := s.Quantity
		s.Quantity = *req.Quantity
		detail := map[string]any{"from": from, "to": s.Quantity}
		if entry, ok := t.prorate(s.Quantity-from, req.MessageID); ok {
			detail["proration_minor"] = entry.AmountMinor
		}
		t.event(domain.EventQuantityChanged, actor, detail)
		t.notify(domain.NotifyQuantityChanged)
	}
	if (req.Nickname != nil || req.ClearNickname) && !(w.durable() && equal(s.Nickname, req.Nickname)) {
		s.Nickname = req.Nickname
		t.memo = true
		t.event(domain.EventNicknameChanged, actor, map[string]any{"nickname": s.Nickname})
	}
	if req.AutoRenew != nil && *req.AutoRenew != s.AutoRenew {
		s.AutoRenew = *req.AutoRenew
		t.event(domain.EventAutoRenewChanged, actor, map[string]any{"auto_renew": s.AutoRenew})
	}
	if (req.ResellerPartnerID != nil || req.ClearReseller) && !(w.durable() && equal(s.ResellerPartnerID, req.ResellerPartnerID)) {
		s.ResellerPartnerID = req.ResellerPartnerID
		t.event(domain.EventResellerChanged, actor, map[string]any{"reseller_partner_id": s.ResellerPartnerID})
	}
	if req.BillingFrequency != nil {
		t.changeFrequency(*req.BillingFrequency, actor)
	}
}

func (w *subscriptionWorkflow) checkCancel(now time.Time, _ EndRequest) error {
	if err := w.checkNotTerminal(); err != nil {
		return err
	}
	if s := w.st.Subscription; !s.InCancellationWindow(now) {
		return problem(ErrCancellationWindowClosed, "the cancellation window closed at %s; turn off auto_renew instead", s.CancellationWindowEndsAt.Format(time.RFC3339))
	}
	return nil
}

func endWith(status domain.Status) func(*transition, EndRequest) {
	return func(t *transition, req EndRequest) { t.end(status, req.Actor, nil) }
}

func (w *subscriptionWorkflow) checkLink(_ time.Time, req LinkRequest) error {
	s := w.st.Subscription
	if slices.Contains(s.LinkedSubscriptionIDs, req.SubscriptionID) {
		return nil // linked before: the handler answers without a change
	}
	switch {
	case s.Status.Terminal():
		return problem(ErrValidationFailed, "parent subscription is %s and takes no new links", s.Status)
	case s.CustomerID != req.CustomerID || s.PartnerID != req.PartnerID:
		return problem(ErrValidationFailed, "parent subscription belongs to another customer")
	}
	return nil
}

func (w *subscriptionWorkflow) link(t *transition, req LinkRequest) {
	s := t.sub()
	if slices.Contains(s.LinkedSubscriptionIDs, req.SubscriptionID) {
		return
	}
	s.LinkedSubscriptionIDs = append(s.LinkedSubscriptionIDs, req.SubscriptionID)
	t.event(domain.EventSubscriptionLinked, SystemActor.String(), map[string]any{"subscription_id": req.SubscriptionID})
}

// transferBillingAccount moves later charges to another billing account of
// the customer; the account it is on already changes nothing.
func transferBillingAccount(t *transition, req TransferRequest) {
	s := t.sub()
	from := s.BillingAccountID
	if from == nil {
		from = req.From
	}
	if from != nil && *from == req.BillingAccountID {
		return
	}
	to := req.BillingAccountID
	s.BillingAccountID = &to
	t.event(domain.EventBillingAccountChanged, req.Actor.String(), map[string]any{
		"from_billing_account_id": from, "to_billing_account_id": to,
	})
}

// checkChooseSite: a site is chosen while the subscription waits for set-up.
func (w *subscriptionWorkflow) checkChooseSite(time.Time, ChooseSiteRequest) error {
	if s := w.st.Subscription; s.Status != domain.StatusPendingFulfillment || s.FulfillmentConfirmed {
		return problem(ErrInvalidState, "a site is chosen while a subscription waits for set-up; this one is %s", s.Status)
	}
	return nil
}

// chooseSite records the customer's site for set-up; the site chosen already
// changes nothing.
func chooseSite(t *transition, req ChooseSiteRequest) {
	s := t.sub()
	if s.SiteID != nil && *s.SiteID == req.SiteID {
		return
	}
	id, url := req.SiteID, req.SiteURL
	s.SiteID, s.SiteURL = &id, &url
	t.event(domain.EventSiteChosen, req.Actor.String(), map[string]any{"site_id": id, "url": url})
}

// equal compares two optional values.
func equal[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
