package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	// One read for the customer, the offer and its publisher.
	catalog, err := s.Store.OfferForPurchase(ctx, agent.PartnerID, req.CustomerID, req.OfferID)
	if errors.Is(err, store.ErrNotFound) {
		catalog.CustomerKnown, err = s.customerKnown(ctx, agent.PartnerID, req.CustomerID)
		if err == nil && catalog.CustomerKnown {
			return domain.Subscription{}, invalid("unknown offer %q", req.OfferID)
		}
	}
	if err != nil {
		return domain.Subscription{}, unavailable(err)
	}
	if !catalog.CustomerKnown {
		return domain.Subscription{}, invalid("unknown customer %q", req.CustomerID)
	}
	offer, publisher := catalog.Offer, catalog.Publisher
	if cache != nil {
		cache[publisher.ID] = publisher
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

// customerKnown tells whether the partner has the customer.
func (s *Server) customerKnown(ctx context.Context, partnerID, customerID string) (bool, error) {
	_, err := s.Store.Customer(ctx, partnerID, customerID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
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
