package api

// The customer side of the partner API: contacts (read-only: partners never
// change contacts), sites, billing accounts, and moving a subscription to
// another billing account.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/wire"
	"github.com/partnerhub/fulfillment/workflows"
)

// ownCustomer resolves the path's customer among the calling partner's (404 otherwise).
func (s *Server) ownCustomer(c *gin.Context) (store.CustomerRef, error) {
	ref := store.CustomerRef{PartnerID: currentAgent(c).PartnerID, CustomerID: c.Param("id")}
	notFound := problem(CodeNotFound, "no customer "+strconv.Quote(c.Param("id")))
	if !lookupable(ref.CustomerID) {
		return ref, notFound
	}
	_, err := s.Store.Customer(c.Request.Context(), ref.PartnerID, ref.CustomerID)
	if errors.Is(err, store.ErrNotFound) {
		return ref, notFound
	}
	if err != nil {
		return ref, unavailable(err)
	}
	return ref, nil
}

func (s *Server) listContacts(c *gin.Context) {
	ref, err := s.ownCustomer(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	list, err := s.Store.Contacts(c.Request.Context(), ref)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": list, "next_cursor": nil})
}

// assignFirstContact makes a purchase's customer_contact_email the
// customer's first (primary) contact. It runs before the purchase's
// workflow starts, so the order email finds its recipient.
func (s *Server) assignFirstContact(ctx context.Context, agent store.Agent, customerID string, email *string) error {
	if email == nil {
		return nil
	}
	_, _, err := s.Store.AssignFirstContact(ctx, store.CustomerRef{PartnerID: agent.PartnerID, CustomerID: customerID},
		*email, agentActor(agent).String())
	switch {
	case errors.Is(err, store.ErrInvalidEmail):
		return problem(CodeValidationFailed, "customer_contact_email is not a valid email address")
	case errors.Is(err, store.ErrCustomerHasOther):
		return problem(CodeValidationFailed, "customer_contact_email: the customer has contacts already, and only they may add more")
	case err != nil:
		return unavailable(err)
	}
	return nil
}

// pageParams reads limit (1–100, default 50) and cursor.
func pageParams(c *gin.Context) (store.Page, error) {
	p := store.Page{Limit: 50}
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, problem(CodeInvalidRequest, "limit must be an integer from 1 to 100")
		}
		p.Limit = n
	}
	if v := c.Query("cursor"); v != "" {
		seq, err := decodeCursor(v)
		if err != nil {
			return p, problem(CodeInvalidRequest, "cursor is not one this API returned")
		}
		p.BeforeSeq = seq
	}
	return p, nil
}

func nextCursor(seq int64) *string {
	if seq == 0 {
		return nil
	}
	cur := encodeCursor(seq)
	return &cur
}

// creationKey reads the Idempotency-Key a creating POST must carry, bound to its body.
func creationKey(c *gin.Context, req any) (store.CreationKey, error) {
	key := c.GetHeader("Idempotency-Key")
	if key == "" {
		return store.CreationKey{}, problem(CodeIdempotencyKeyRequired, "send an Idempotency-Key header with every POST that creates")
	}
	if len(key) > maxIdempotencyKey {
		return store.CreationKey{}, problem(CodeInvalidRequest, "Idempotency-Key may hold at most 255 characters")
	}
	canonical, _ := json.Marshal(req)
	hash := sha256.Sum256(append([]byte(c.Param("id")+"\x00"), canonical...))
	return store.CreationKey{Key: key, Hash: hash[:]}, nil
}

func createdStatus(replayed bool, c *gin.Context) int {
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	return http.StatusCreated
}

// SiteBody is the body of POST /v1/customers/{id}/sites.
type SiteBody struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

func decodeSite(body []byte) (req SiteBody, err error) {
	if err = DecodeStrict(body, &req); err != nil {
		return req, err
	}
	if req.URL == "" {
		return req, problem(CodeInvalidRequest, `field "url" is required`)
	}
	if err := checkText("name", &req.Name, 256); err != nil {
		return req, err
	}
	if err := checkText("url", &req.URL, 2048); err != nil {
		return req, err
	}
	return req, nil
}

func (s *Server) createSite(c *gin.Context) {
	ref, err := s.ownCustomer(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	req, ok := decodeBody(c, decodeSite)
	if !ok {
		return
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		writeProblem(c, problem(CodeValidationFailed, "url must be an absolute http or https URL"))
		return
	}
	if req.Name == "" {
		req.Name = u.Host
	}
	key, err := creationKey(c, req)
	if err != nil {
		writeProblem(c, err)
		return
	}
	site, replayed, err := s.Store.CreateSite(c.Request.Context(), ref, req.Name, req.URL, agentActor(currentAgent(c)).String(), key)
	switch {
	case errors.Is(err, store.ErrIdempotencyKeyReused):
		writeProblem(c, problem(CodeIdempotencyKeyReused, "this Idempotency-Key was used with a different request"))
	case errors.Is(err, store.ErrSiteExists):
		writeProblem(c, problem(CodeAlreadyExists, "the customer has a site with this URL already"))
	case err != nil:
		writeProblem(c, unavailable(err))
	default:
		c.Header("Location", fmt.Sprintf("/v1/customers/%s/sites", ref.CustomerID))
		c.JSON(createdStatus(replayed, c), site)
	}
}

func (s *Server) listSites(c *gin.Context) {
	ref, err := s.ownCustomer(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	p, err := pageParams(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	items, next, err := s.Store.Sites(c.Request.Context(), ref, p)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_cursor": nextCursor(next)})
}

// BillingAccountBody is the body of POST /v1/customers/{id}/billing-accounts.
type BillingAccountBody struct {
	Name string `json:"name"`
}

func decodeBillingAccount(body []byte) (req BillingAccountBody, err error) {
	if err = DecodeStrict(body, &req); err != nil {
		return req, err
	}
	if req.Name == "" {
		return req, problem(CodeInvalidRequest, `field "name" is required`)
	}
	return req, checkText("name", &req.Name, 256)
}

func (s *Server) createBillingAccount(c *gin.Context) {
	ref, err := s.ownCustomer(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	req, ok := decodeBody(c, decodeBillingAccount)
	if !ok {
		return
	}
	key, err := creationKey(c, req)
	if err != nil {
		writeProblem(c, err)
		return
	}
	account, replayed, err := s.Store.CreateBillingAccount(c.Request.Context(), ref, req.Name, agentActor(currentAgent(c)).String(), key)
	switch {
	case errors.Is(err, store.ErrIdempotencyKeyReused):
		writeProblem(c, problem(CodeIdempotencyKeyReused, "this Idempotency-Key was used with a different request"))
	case err != nil:
		writeProblem(c, unavailable(err))
	default:
		c.Header("Location", fmt.Sprintf("/v1/customers/%s/billing-accounts", ref.CustomerID))
		c.JSON(createdStatus(replayed, c), account)
	}
}

func (s *Server) listBillingAccounts(c *gin.Context) {
	ref, err := s.ownCustomer(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	p, err := pageParams(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	items, next, err := s.Store.BillingAccounts(c.Request.Context(), ref, p)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_cursor": nextCursor(next)})
}

// TransferBody is the body of POST /v1/subscriptions/{id}/transfer.
type TransferBody struct {
	BillingAccountID string `json:"billing_account_id"`
}

// transferSubscription moves a subscription to another billing account of
// its customer (admin agents) through the workflow's transfer_billing_account
// Update: its one transition records the move, stamps later charges and
// emails the contacts. Moving it to the account it is on answers the
// subscription unchanged.
func (s *Server) transferSubscription(c *gin.Context) {
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	req, ok := decodeBody(c, func(body []byte) (req TransferBody, err error) {
		if err = DecodeStrict(body, &req); err == nil && req.BillingAccountID == "" {
			err = problem(CodeInvalidRequest, `field "billing_account_id" is required`)
		}
		return req, err
	})
	if !ok {
		return
	}
	if sub.Status.Terminal() {
		writeProblem(c, problem(CodeInvalidState, "subscription is "+string(sub.Status)))
		return
	}
	unknown := problem(CodeValidationFailed, "the customer has no billing account "+strconv.Quote(req.BillingAccountID))
	if !lookupable(req.BillingAccountID) {
		writeProblem(c, unknown)
		return
	}
	agent := currentAgent(c)
	account, err := s.Store.BillingAccount(c.Request.Context(), store.CustomerRef{PartnerID: agent.PartnerID, CustomerID: sub.CustomerID}, req.BillingAccountID)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(c, unknown)
		return
	} else if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	if sub.BillingAccountID != nil && *sub.BillingAccountID == account.ID {
		s.getSubscription(c) // on that account already: nothing to change
		return
	}
	canonical, _ := json.Marshal(req)
	if !s.claimChangeKey(c, "transfer", sub.ID, canonical) {
		return
	}
	msg := workflows.TransferRequest{MessageID: messageID(c, "transfer"), Actor: agentActor(agent),
		BillingAccountID: account.ID, From: sub.BillingAccountID}
	s.send(c, sub.ID, "transfer", workflows.UpdateTransferBilling, msg.MessageID, msg)
}

// placeAll fills the customer-side fields of a list of views.
func (s *Server) placeAll(ctx context.Context, views []wire.Subscription) error {
	ptrs := make([]*wire.Subscription, 0, len(views))
	for i := range views {
		ptrs = append(ptrs, &views[i])
	}
	return s.place(ctx, ptrs...)
}

// place fills the customer-side fields (site, billing account) of views.
func (s *Server) place(ctx context.Context, views ...*wire.Subscription) error {
	ids := make([]string, 0, len(views))
	for _, v := range views {
		ids = append(ids, v.ID)
	}
	placements, err := s.Store.Placements(ctx, ids)
	if err != nil {
		return unavailable(fmt.Errorf("read placements: %w", err))
	}
	for _, v := range views {
		if p, ok := placements[v.ID]; ok {
			placeOn(v, p)
		}
	}
	return nil
}

// placeOn fills a view's customer-side fields from its placement.
func placeOn(v *wire.Subscription, p store.Placement) {
	v.BillingAccountID = p.BillingAccountID
	if v.ActionRequired != nil {
		v.ActionRequired.SetupInstructions = p.SetupInstructions
	}
	if p.SiteID != nil {
		v.Site = &wire.Site{ID: *p.SiteID, Name: *p.SiteName, URL: *p.SiteURL}
	}
}
