package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/wire"
	"github.com/partnerhub/fulfillment/workflows"
)

// Field limits.
const (
	maxIdempotencyKey = 255
	maxNickname       = 256
	maxResellerID     = 64
	maxID             = 128
	maxFrequency      = 32
	// staleClaim is how long a purchase may run before a retry with the same
	// key takes it over (with the same subscription id, so nothing duplicates).
	staleClaim = 10 * time.Second
)

// PurchaseBody is the body of POST /v1/subscriptions.
type PurchaseBody struct {
	CustomerID           string  `json:"customer_id"`
	OfferID              string  `json:"offer_id"`
	PlanID               string  `json:"plan_id"`
	Quantity             *int    `json:"quantity"`
	Nickname             *string `json:"nickname"`
	AutoRenew            *bool   `json:"auto_renew"`
	ResellerPartnerID    *string `json:"reseller_partner_id"`
	ParentSubscriptionID *string `json:"parent_subscription_id"`
	// CustomerContactEmail becomes the customer's first (primary) contact.
	CustomerContactEmail *string `json:"customer_contact_email,omitempty"`
	// BillingFrequency is one of the plan's billing frequencies (default: the plan's).
	BillingFrequency *string `json:"billing_frequency,omitempty"`
}

// DecodePurchase decodes and shape-checks a purchase body.
func DecodePurchase(body []byte) (PurchaseBody, error) {
	var req PurchaseBody
	if err := DecodeStrict(body, &req); err != nil {
		return req, err
	}
	for name, v := range map[string]string{"customer_id": req.CustomerID, "offer_id": req.OfferID, "plan_id": req.PlanID} {
		if v == "" {
			return req, problem(CodeInvalidRequest, fmt.Sprintf("field %q is required", name))
		}
		if len(v) > maxID {
			return req, problem(CodeInvalidRequest, fmt.Sprintf("field %q is longer than %d characters", name, maxID))
		}
		if strings.ContainsRune(v, 0) {
			return req, problem(CodeInvalidRequest, fmt.Sprintf("field %q may not contain NUL characters", name))
		}
	}
	if req.Quantity == nil {
		return req, problem(CodeInvalidRequest, `field "quantity" is required`)
	}
	if err := checkText("nickname", req.Nickname, maxNickname); err != nil {
		return req, err
	}
	if err := checkText("reseller_partner_id", req.ResellerPartnerID, maxResellerID); err != nil {
		return req, err
	}
	if err := checkText("customer_contact_email", req.CustomerContactEmail, 254); err != nil {
		return req, err
	}
	if err := checkText("billing_frequency", req.BillingFrequency, maxFrequency); err != nil {
		return req, err
	}
	if p := req.ParentSubscriptionID; p != nil && (*p == "" || len(*p) > maxID || strings.ContainsRune(*p, 0)) {
		return req, problem(CodeInvalidRequest, `field "parent_subscription_id" must be a subscription id`)
	}
	return req, nil
}

// checkText bounds a free-text field; NUL is refused because PostgreSQL's
// text cannot hold it (accepting it would leave a workflow retrying a write
// that can never succeed).
func checkText(field string, v *string, limit int) error {
	if v != nil && utf8.RuneCountInString(*v) > limit {
		return problem(CodeInvalidRequest, fmt.Sprintf("field %q is longer than %d characters", field, limit))
	}
	if v != nil && strings.ContainsRune(*v, 0) {
		return problem(CodeInvalidRequest, fmt.Sprintf("field %q may not contain NUL characters", field))
	}
	return nil
}

// purchase starts a subscription workflow under the partner's Idempotency-Key.
func (s *Server) purchase(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if key == "" {
		writeProblem(c, problem(CodeIdempotencyKeyRequired, "send an Idempotency-Key header with every purchase"))
		return
	}
	if len(key) > maxIdempotencyKey {
		writeProblem(c, problem(CodeInvalidRequest, "Idempotency-Key may hold at most 255 characters"))
		return
	}
	req, ok := decodeBody(c, DecodePurchase)
	if !ok {
		return
	}
	ans, err := s.buy(c.Request.Context(), currentAgent(c), key, req)
	if ans.claim.SubscriptionID != "" {
		c.Set(subscriptionIDKey, ans.claim.SubscriptionID)
	}
	if ans.settleErr != nil {
		logger(c).Warn("settle idempotency key", "error", ans.settleErr)
	}
	if err != nil {
		writeProblem(c, err)
		return
	}
	if ans.replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Location", "/v1/subscriptions/"+ans.claim.SubscriptionID)
	c.Data(ans.status, "application/json; charset=utf-8", ans.body)
}

// buy is a purchase's way through its steps: claim the key (a retry replays
// the first answer; a purchase whose request died is resumed under the same
// subscription id), check it against the catalog and link it to its parent,
// start its workflow, and keep the answer — or free the key when nothing was
// bought.
func (s *Server) buy(ctx context.Context, agent store.Agent, key string, req PurchaseBody) (answer, error) {
	canonical, _ := json.Marshal(req)
	hash := sha256.Sum256(canonical)
	purchases := once{
		claim: func(ctx context.Context) (store.Claim, error) {
			return s.Store.ClaimIdempotencyKey(ctx, agent.PartnerID, key, hash[:], uuid.NewString(), staleClaim)
		},
		complete: func(ctx context.Context, status int, body []byte) error {
			return s.Store.CompleteIdempotencyKey(ctx, agent.PartnerID, key, status, body)
		},
		release: func(ctx context.Context) error { return s.Store.ReleaseIdempotencyKey(ctx, agent.PartnerID, key) },
		reused:  problem(CodeIdempotencyKeyReused, "this Idempotency-Key was used with a different body"),
		running: problem(CodeIdempotencyKeyInUse, "a purchase with this Idempotency-Key is still running; retry shortly"),
		frees:   func(status int) bool { return status >= 400 && status < 500 }, // refused: nothing was bought
		replay:  s.replayPurchase,
	}
	return purchases.run(ctx, func(claim store.Claim) (int, []byte, []byte, error) {
		// The catalog check reads the publisher; the answer's link reuses it.
		cache := publishers{}
		sub, err := s.startPurchase(ctx, agent, claim.SubscriptionID, req, cache)
		if err != nil {
			return 0, nil, nil, err
		}
		view, err := s.partnerViewWith(ctx, sub, cache)
		if err != nil {
			return 0, nil, nil, err // bought, but not answered: a retry replays it
		}
		body, _ := json.Marshal(view)
		// The stored answer leaves out the publisher link: its authorization code
		// is a secret kept only as a hash. A replay derives the same link again.
		view.PublisherLink = nil
		stored, _ := json.Marshal(view)
		return http.StatusCreated, body, stored, nil
	})
}

// replayPurchase rebuilds the first answer to a purchase from its stored
// copy, deriving the publisher link that was left out of it.
func (s *Server) replayPurchase(ctx context.Context, claim store.Claim) ([]byte, error) {
	var view wire.Subscription
	if err := json.Unmarshal(claim.ResponseBody, &view); err != nil {
		return nil, fmt.Errorf("stored purchase answer of %s: %w", claim.SubscriptionID, err)
	}
	if view.Status == domain.StatusPendingFulfillment {
		pub, err := s.Store.Publisher(ctx, view.PublisherID)
		if err != nil {
			return nil, unavailable(err)
		}
		view.PublisherLink = wire.NewPublisherLink(pub.LandingURL, s.Vault.AuthorizationCode(view.ID), view.ActivationDeadline)
	}
	return json.Marshal(view)
}

// startPurchase validates the purchase against the catalog, links it to its
// parent (the parent's workflow decides), and starts its workflow.
// cache, when not nil, keeps the publisher read for the caller.
func (s *Server) startPurchase(ctx context.Context, agent store.Agent, id string, req PurchaseBody, cache publishers) (domain.Subscription, error) {
	invalid := func(format string, args ...any) error {
		return problem(CodeValidationFailed, fmt.Sprintf(format, args...))
	}
	if _, err := s.Store.Customer(ctx, agent.PartnerID, req.CustomerID); errors.Is(err, store.ErrNotFound) {
		return domain.Subscription{}, invalid("unknown customer %q", req.CustomerID)
	} else if err != nil {
		return domain.Subscription{}, unavailable(err)
	}
	offer, err := s.Store.Offer(ctx, req.OfferID)
	if errors.Is(err, store.ErrNotFound) {
		return domain.Subscription{}, invalid("unknown offer %q", req.OfferID)
	} else if err != nil {
		return domain.Subscription{}, unavailable(err)
	}
	plan, err := s.Store.Plan(ctx, offer.ID, req.PlanID)
	if errors.Is(err, store.ErrNotFound) {
		return domain.Subscription{}, invalid("offer %q has no plan %q", offer.ID, req.PlanID)
	} else if err != nil {
		return domain.Subscription{}, unavailable(err)
	}
	if q := *req.Quantity; q < plan.MinQuantity || q > plan.MaxQuantity {
		return domain.Subscription{}, invalid("quantity must be between %d and %d", plan.MinQuantity, plan.MaxQuantity)
	}
	frequency := plan.Frequency()
	if f := req.BillingFrequency; f != nil {
		if !plan.AllowsFrequency(*f) {
			return domain.Subscription{}, invalid("billing_frequency must be one of %s", strings.Join(plan.Frequencies(), ", "))
		}
		frequency = *f
	}
	publisher, err := s.publisher(ctx, cache, offer.PublisherID)
	if err != nil {
		return domain.Subscription{}, unavailable(err)
	}
	if err := s.assignFirstContact(ctx, agent, req.CustomerID, req.CustomerContactEmail); err != nil {
		return domain.Subscription{}, err
	}
	if err := s.checkParent(ctx, agent, id, offer, req); err != nil {
		return domain.Subscription{}, err
	}
	var apps []PurchaseBody
	if offer.Kind == domain.OfferKindCollection {
		if apps, err = s.bundle(ctx, offer, req); err != nil {
			return domain.Subscription{}, err
		}
	}

	now := s.Now().UTC().Truncate(time.Microsecond)
	sub := domain.Subscription{
		ID: id, PartnerID: agent.PartnerID, CustomerID: req.CustomerID, PublisherID: offer.PublisherID,
		OfferID: offer.ID, PlanID: plan.ID, Quantity: *req.Quantity, Nickname: req.Nickname, AutoRenew: true,
		ResellerPartnerID: req.ResellerPartnerID, ParentSubscriptionID: req.ParentSubscriptionID,
		LinkedSubscriptionIDs: []string{}, EntitlementNumber: domain.EntitlementNumber(id),
		Status: domain.StatusPendingFulfillment, ActivationDeadline: domain.MustAdd(now, plan.ActivationDeadline),
		BillingFrequency: frequency, CreatedAt: now, UpdatedAt: now,
	}
	if req.AutoRenew != nil {
		sub.AutoRenew = *req.AutoRenew
	}
	in := workflows.NewState(sub, plan, agentActor(agent))
	in.NotifyPublisher = publisher.WebhookURL != nil
	ctx, cancel := context.WithTimeout(ctx, s.UpdateTimeout)
	defer cancel()
	start := s.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: workflows.WorkflowID(id), TaskQueue: s.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes:    workflows.SearchAttributes(sub),
		Memo:                     workflows.Memo(sub, plan),
	}, workflows.SubscriptionWorkflow, in)
	handle, err := s.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID: workflows.PurchaseUpdateID(id), UpdateName: workflows.UpdatePurchase, WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return domain.Subscription{}, unavailable(fmt.Errorf("start purchase %s: %w", id, err))
	}
	var recorded domain.Subscription
	if err := handle.Get(ctx, &recorded); err != nil {
		return domain.Subscription{}, unavailable(fmt.Errorf("await purchase %s: %w", id, err))
	}
	if apps != nil {
		return s.buyBundle(ctx, agent, recorded, apps)
	}
	return recorded, nil
}

// checkParent validates parent_subscription_id and asks the parent's workflow
// to take the link; the workflow refuses if the parent has ended meanwhile.
func (s *Server) checkParent(ctx context.Context, agent store.Agent, id string, offer store.Offer, req PurchaseBody) error {
	if req.ParentSubscriptionID == nil {
		if offer.Kind == domain.OfferKindApp {
			return problem(CodeValidationFailed, fmt.Sprintf("offer %q is an app: it needs a parent_subscription_id", offer.ID))
		}
		return nil
	}
	parentID := *req.ParentSubscriptionID
	notLinkable := func(why string) error {
		return problem(CodeValidationFailed, fmt.Sprintf("parent subscription %q is not linkable: %s", parentID, why))
	}
	if offer.Kind != domain.OfferKindApp {
		return notLinkable(fmt.Sprintf("offer %q is not an app", offer.ID))
	}
	parent, err := s.Store.Subscription(ctx, parentID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && parent.PartnerID != agent.PartnerID) {
		return notLinkable("no such subscription")
	} else if err != nil {
		return unavailable(err)
	}
	switch {
	case parent.CustomerID != req.CustomerID:
		return notLinkable("it belongs to another customer")
	case !slices.Contains(offer.ParentOfferIDs, parent.OfferID):
		return notLinkable(fmt.Sprintf("app %q cannot be installed on offer %q", offer.ID, parent.OfferID))
	case parent.Status.Terminal():
		return notLinkable("it is " + string(parent.Status))
	}
	_, err = s.update(ctx, parentID, workflows.UpdateLink, workflows.LinkUpdateID(id), workflows.LinkRequest{
		SubscriptionID: id, CustomerID: req.CustomerID, PartnerID: agent.PartnerID,
	})
	var p *Problem
	if errors.As(err, &p) && p.Code == CodeInvalidState {
		return notLinkable("it has ended")
	}
	return err
}

// update sends one Update to a subscription's workflow and maps its answer:
// a validator's or handler's refusal to its problem code; a closed workflow
// to invalid_state; anything else to unavailable.
func (s *Server) update(ctx context.Context, subscriptionID, name, updateID string, arg any) (domain.Subscription, error) {
	ctx, cancel := context.WithTimeout(ctx, s.UpdateTimeout)
	defer cancel()
	sub, err := s.sendUpdate(ctx, subscriptionID, name, updateID, arg)
	if err == nil {
		return sub, nil
	}
	if unchanged, ok := workflows.Unchanged(err); ok {
		return unchanged, nil // a no-op: the subscription as it stands
	}
	if code, msg, ok := workflows.ProblemCode(err); ok {
		return sub, problem(code, msg)
	}
	// A workflow that has closed takes no messages: its subscription ended.
	lookup, cancelLookup := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelLookup()
	if current, rerr := s.Store.Subscription(lookup, subscriptionID); rerr == nil && current.Status.Terminal() {
		return current, problem(CodeInvalidState, "subscription is "+string(current.Status))
	}
	return sub, unavailable(fmt.Errorf("update %s of %s: %w", name, subscriptionID, err))
}

// sendUpdate sends an Update and waits for its result. A message turned away
// while the workflow continues as new, or one Temporal stopped waiting for on
// its own (an Update admitted as the run closed is aborted), is sent again
// under the same Update id, with backoff, until it is answered or ctx ends:
// Temporal and the workflow's own message ids apply it at most once.
func (s *Server) sendUpdate(ctx context.Context, subscriptionID, name, updateID string, arg any) (domain.Subscription, error) {
	var sub domain.Subscription
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		// Each attempt waits a bounded time: an Update the server lost (its
		// registry cleared with the workflow's cached state) is never answered,
		// and only sending it again under the same id brings its answer.
		attempt, cancel := context.WithTimeout(ctx, updateAttempt)
		handle, err := s.Temporal.UpdateWorkflow(attempt, client.UpdateWorkflowOptions{
			WorkflowID: workflows.WorkflowID(subscriptionID), UpdateID: updateID, UpdateName: name,
			Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = handle.Get(attempt, &sub)
		}
		cancel()
		if !workflows.ComeAgain(err) && !(ctx.Err() == nil && mayStillApply(err)) {
			return sub, err
		}
		select {
		case <-ctx.Done():
			return sub, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// updateAttempt bounds one wait for an Update's answer (see sendUpdate).
const updateAttempt = 5 * time.Second

// lookupable tells whether id could name a row: PostgreSQL refuses NUL and
// invalid UTF-8, and such an id is unknown (404), not an outage (503).
func lookupable(id string) bool {
	return utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}

// ownSubscription loads a subscription of the calling partner (404 otherwise).
func (s *Server) ownSubscription(c *gin.Context) (domain.Subscription, error) {
	if !lookupable(c.Param("id")) {
		return domain.Subscription{}, problem(CodeNotFound, "no subscription "+strconv.Quote(c.Param("id")))
	}
	sub, err := s.Store.Subscription(c.Request.Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && sub.PartnerID != currentAgent(c).PartnerID) {
		return sub, problem(CodeNotFound, "no subscription "+strconv.Quote(c.Param("id")))
	}
	if err != nil {
		return sub, unavailable(err)
	}
	return sub, nil
}

// partnerView renders a subscription for its partner, with the publisher link
// while it waits for fulfillment. A view it cannot complete is an error
// (503), never an answer with a field silently missing.
func (s *Server) partnerView(ctx context.Context, sub domain.Subscription) (wire.Subscription, error) {
	return s.partnerViewWith(ctx, sub, nil)
}

// partnerViewWith is partnerView reading publishers through cache (nil: none).
func (s *Server) partnerViewWith(ctx context.Context, sub domain.Subscription, cache publishers) (wire.Subscription, error) {
	view, err := s.unplacedView(ctx, sub, cache)
	if err == nil {
		err = s.place(ctx, &view)
	}
	return view, err
}

// publishers holds the publishers one request has read, so a list page reads
// each publisher once rather than once per pending subscription.
type publishers map[string]store.Publisher

// publisher reads a publisher, through the request's cache when there is one.
func (s *Server) publisher(ctx context.Context, cache publishers, id string) (store.Publisher, error) {
	if p, ok := cache[id]; ok {
		return p, nil
	}
	p, err := s.Store.Publisher(ctx, id)
	if err == nil && cache != nil {
		cache[id] = p
	}
	return p, err
}

// unplacedView is partnerView without the customer-side fields (lists fill
// them in one query); cache, when not nil, keeps the publishers read.
func (s *Server) unplacedView(ctx context.Context, sub domain.Subscription, cache publishers) (wire.Subscription, error) {
	var link *wire.PublisherLink
	if sub.Status == domain.StatusPendingFulfillment {
		pub, err := s.publisher(ctx, cache, sub.PublisherID)
		if err != nil {
			return wire.Subscription{}, unavailable(fmt.Errorf("publisher of %s: %w", sub.ID, err))
		}
		link = wire.NewPublisherLink(pub.LandingURL, s.Vault.AuthorizationCode(sub.ID), sub.ActivationDeadline)
	}
	if sub.BillingFrequency == "" {
		// A workflow started before billing periods answers without one: it bills once per term.
		plan, err := s.Store.Plan(ctx, sub.OfferID, sub.PlanID)
		if err != nil {
			return wire.Subscription{}, unavailable(fmt.Errorf("plan of %s: %w", sub.ID, err))
		}
		sub.BillingFrequency = sub.PricedPlan(plan).Term // the term its workflow carries, when recorded
	}
	return wire.NewSubscription(sub, s.Now(), link), nil
}

func (s *Server) getSubscription(c *gin.Context) {
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	view, err := s.partnerView(c.Request.Context(), sub)
	if err != nil {
		writeProblem(c, err)
		return
	}
	c.JSON(http.StatusOK, view)
}

// listSubscriptions pages through the read model.
func (s *Server) listSubscriptions(c *gin.Context) {
	f := store.SubscriptionFilter{PartnerID: currentAgent(c).PartnerID, CustomerID: c.Query("customer_id"), Limit: 50}
	if tab, ok := c.GetQuery("tab"); ok {
		if f.Statuses = domain.TabStatuses(tab); f.Statuses == nil {
			writeProblem(c, problem(CodeInvalidRequest, "tab must be active, inactive or upcoming"))
			return
		}
	}
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeProblem(c, problem(CodeInvalidRequest, "limit must be an integer from 1 to 100"))
			return
		}
		f.Limit = n
	}
	if v := c.Query("cursor"); v != "" {
		seq, err := decodeCursor(v)
		if err != nil {
			writeProblem(c, problem(CodeInvalidRequest, "cursor is not one this API returned"))
			return
		}
		f.BeforeSeq = seq
	}
	page, err := s.Store.ListSubscriptions(c.Request.Context(), f)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	items := make([]wire.Subscription, 0, len(page.Items))
	cache := publishers{}
	for _, sub := range page.Items {
		view, err := s.unplacedView(c.Request.Context(), sub, cache)
		if err != nil {
			writeProblem(c, err)
			return
		}
		items = append(items, view)
	}
	if err := s.placeAll(c.Request.Context(), items); err != nil {
		writeProblem(c, err)
		return
	}
	var next *string
	if page.NextSeq != 0 {
		cur := encodeCursor(page.NextSeq)
		next = &cur
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_cursor": next})
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s:" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(cursor string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) < 3 || string(raw[:2]) != "s:" {
		return 0, errors.New("bad cursor")
	}
	seq, err := strconv.ParseInt(string(raw[2:]), 10, 64)
	if err != nil || seq <= 0 {
		return 0, errors.New("bad cursor")
	}
	return seq, nil
}

func (s *Server) subscriptionEvents(c *gin.Context) {
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	events, err := s.Store.Events(c.Request.Context(), sub.ID)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": wire.Events(events)})
}

func (s *Server) subscriptionBilling(c *gin.Context) {
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	// The subscription again, with its ledger as of the same instant.
	sub, entries, balance, err := s.Store.Billing(c.Request.Context(), sub.ID)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	plan, err := s.Store.Plan(c.Request.Context(), sub.OfferID, sub.PlanID)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": wire.Ledger(entries), "balance_minor": balance, "currency": s.currencyOf(entries),
		"upcoming_charges": wire.UpcomingCharges(domain.UpcomingCharges(sub, plan))})
}

func (s *Server) currencyOf(entries []domain.LedgerEntry) *string {
	if len(entries) == 0 {
		return nil
	}
	return &entries[0].Currency
}
