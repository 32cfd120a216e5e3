package portal

// Pages of partner agents: their partner's customers and subscriptions, and
// every change the partner API allows, sent through the API's own handlers
// (api.Server.AsAgent), so roles, idempotency and audit are the API's.

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

func (p *Portal) agent(c *gin.Context) (store.Agent, bool) {
	id := identity(c)
	a, err := p.Store.Agent(c.Request.Context(), id.PartnerID, *id.AgentID)
	if err != nil {
		p.unavailable(c, err)
		return a, false
	}
	return a, true
}

// agentsSubscription loads the path's subscription of the agent's partner
// (404 otherwise) and the signed-in agent; on false it has answered.
func (p *Portal) agentsSubscription(c *gin.Context) (domain.Subscription, store.Agent, bool) {
	sub, ok := p.ownSubscription(c)
	if !ok {
		return sub, store.Agent{}, false
	}
	agent, ok := p.agent(c)
	return sub, agent, ok
}

// call sends a partner API request as the signed-in agent; on a refusal it
// shows the API's reason and answers false.
func (p *Portal) call(c *gin.Context, agent store.Agent, method, path string, body any, key string) (map[string]any, bool) {
	status, raw := p.API.AsAgent(c.Request.Context(), agent, method, path, body, key)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if status < 300 {
		return out, true
	}
	detail, _ := out["detail"].(string)
	if detail == "" {
		detail = "The change could not be made."
	}
	if status >= 500 {
		p.Logger.Warn("portal call", "path", path, "status", status, "detail", detail)
	}
	p.fail(c, status, strings.ToUpper(detail[:1])+detail[1:]+".")
	return nil, false
}

func (p *Portal) agentCustomers(c *gin.Context) {
	id := identity(c)
	customers, err := p.Store.Customers(c.Request.Context(), id.PartnerID)
	if err != nil {
		p.unavailable(c, err)
		return
	}
	p.render(c, http.StatusOK, "a_customers", gin.H{"Title": "Customers", "Customers": customers, "Section": "customers"})
}

func (p *Portal) agentCustomer(c *gin.Context) {
	id := identity(c)
	ctx := c.Request.Context()
	cu, err := p.Store.Customer(ctx, id.PartnerID, c.Param("customer"))
	if errors.Is(err, store.ErrNotFound) {
		p.notFound(c)
		return
	}
	if err != nil {
		p.unavailable(c, err)
		return
	}
	page, err := p.list(c, id.PartnerID, cu.ID)
	if err != nil {
		p.unavailable(c, err)
		return
	}
	p.render(c, http.StatusOK, "a_customer", gin.H{"Title": cu.Name, "Customer": cu, "Tab": page.Tab, "Page": page,
		"Subs": p.views(ctx, newCatalog(p.Store), page.Items, true), "Section": "customers"})
}

func (p *Portal) buyForm(c *gin.Context) {
	id := identity(c)
	ctx := c.Request.Context()
	customers, err := p.Store.Customers(ctx, id.PartnerID)
	if err != nil {
		p.unavailable(c, err)
		return
	}
	offers, err := p.Store.ListOffers(ctx, store.OfferFilter{Limit: 100})
	if err != nil {
		p.unavailable(c, err)
		return
	}
	var parents []subView
	if cid := c.Query("customer"); cid != "" {
		for _, t := range []string{domain.TabActive, domain.TabUpcoming} {
			subs, err := p.tabItems(ctx, id.PartnerID, cid, t)
			if err != nil {
				p.unavailable(c, err)
				return
			}
			parents = append(parents, p.views(ctx, newCatalog(p.Store), subs, false)...)
		}
	}
	p.render(c, http.StatusOK, "a_buy", gin.H{"Title": "Buy a subscription", "Customers": customers, "Offers": offers.Items,
		"Selected": c.Query("customer"), "Parents": parents, "Key": uuid.NewString(), "Section": "customers"})
}

func optionalText(c *gin.Context, field string) *string {
	v := strings.TrimSpace(c.PostForm(field))
	if v == "" {
		return nil
	}
	return &v
}

// buy places a purchase; the form's key is its Idempotency-Key, so a form
// sent twice buys once.
func (p *Portal) buy(c *gin.Context) {
	agent, ok := p.agent(c)
	if !ok {
		return
	}
	offer, plan, _ := strings.Cut(c.PostForm("plan"), "/")
	quantity, err := strconv.Atoi(c.PostForm("quantity"))
	if err != nil {
		p.fail(c, http.StatusUnprocessableEntity, "The quantity must be a whole number.")
		return
	}
	body := map[string]any{"customer_id": c.PostForm("customer"), "offer_id": offer, "plan_id": plan, "quantity": quantity}
	for field, name := range map[string]string{"nickname": "nickname", "reseller": "reseller_partner_id",
		"contact": "customer_contact_email", "parent": "parent_subscription_id"} {
		if v := optionalText(c, field); v != nil {
			body[name] = *v
		}
	}
	out, ok := p.call(c, agent, http.MethodPost, "/v1/subscriptions", body, formKey(c))
	if !ok {
		return
	}
	id, _ := out["id"].(string)
	c.Redirect(http.StatusSeeOther, "/portal/partner/subscriptions/"+id+"?done=bought")
}

// permission is one action on a subscription's page: allowed, or disabled
// with the reason shown beside it.
type permission struct {
	Allowed bool
	Reason  string
}

const salesReason = "Sales agents may not do this; ask an admin agent."

func (p *Portal) permissions(agent store.Agent, sub domain.Subscription) map[string]permission {
	admin := agent.Role == domain.RoleAdminAgent
	ended := sub.Status.Terminal()
	perm := func(allowed bool, reasons ...string) permission {
		if allowed {
			return permission{Allowed: true}
		}
		for _, r := range reasons {
			if r != "" {
				return permission{Reason: r}
			}
		}
		return permission{}
	}
	endedReason := ""
	if ended {
		endedReason = "The subscription has ended (" + strings.ReplaceAll(string(sub.Status), "_", " ") + ")."
	}
	sales := ""
	if !admin {
		sales = salesReason
	}
	window := ""
	if w := sub.CancellationWindowEndsAt; sub.Status == domain.StatusActive && w != nil && !p.Now().Before(*w) {
		window = "The cancellation window closed on " + w.UTC().Format("2 Jan 2006 15:04 MST") + "; turn auto-renew off instead."
	}
	return map[string]permission{
		"quantity":   perm(admin && !ended, endedReason, sales),
		"auto_renew": perm(admin && !ended, endedReason, sales),
		"nickname":   perm(!ended, endedReason),
		"cancel":     perm(admin && !ended && window == "", endedReason, sales, window),
		"deactivate": perm(admin && !ended, endedReason, sales),
		"transfer":   perm(admin && !ended, endedReason, sales),
	}
}

func (p *Portal) agentSubscription(c *gin.Context) {
	sub, agent, ok := p.agentsSubscription(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	events, err := p.Store.Events(ctx, sub.ID)
	if err != nil {
		p.unavailable(c, err)
		return
	}
	ledger, balance, err := p.Store.Ledger(ctx, sub.ID)
	if err != nil {
		p.unavailable(c, err)
		return
	}
	accounts, _, err := p.Store.BillingAccounts(ctx, store.CustomerRef{PartnerID: sub.PartnerID, CustomerID: sub.CustomerID}, store.Page{Limit: 100})
	if err != nil {
		p.unavailable(c, err)
		return
	}
	v := p.view(ctx, sub, true)
	p.render(c, http.StatusOK, "a_subscription", gin.H{"Title": v.Name, "Sub": v, "Events": events, "Ledger": ledger,
		"Balance": balance, "Accounts": accounts, "Can": p.permissions(agent, sub), "Notice": notice(c), "Key": uuid.NewString(),
		"Section": "customers"})
}

// transfer moves the subscription to another of the customer's billing
// accounts (the API's transfer: admin agents only).
func (p *Portal) transfer(c *gin.Context) {
	sub, agent, ok := p.agentsSubscription(c)
	if !ok {
		return
	}
	body := map[string]any{"billing_account_id": c.PostForm("billing_account")}
	if _, ok := p.call(c, agent, http.MethodPost, "/v1/subscriptions/"+sub.ID+"/transfer", body, formKey(c)); !ok {
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/partner/subscriptions/"+sub.ID+"?done=transferred")
}

// change sends one PATCH: the form names what it changes.
func (p *Portal) change(c *gin.Context) {
	sub, agent, ok := p.agentsSubscription(c)
	if !ok {
		return
	}
	body := map[string]any{}
	switch c.PostForm("what") {
	case "quantity":
		n, err := strconv.Atoi(c.PostForm("quantity"))
		if err != nil {
			p.fail(c, http.StatusUnprocessableEntity, "The quantity must be a whole number.")
			return
		}
		body["quantity"] = n
	case "auto_renew":
		body["auto_renew"] = c.PostForm("auto_renew") == "on"
	case "nickname":
		body["nickname"] = optionalText(c, "nickname")
		body["reseller_partner_id"] = optionalText(c, "reseller")
	default:
		p.fail(c, http.StatusBadRequest, "Nothing to change.")
		return
	}
	if _, ok := p.call(c, agent, http.MethodPatch, "/v1/subscriptions/"+sub.ID, body, formKey(c)); !ok {
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/partner/subscriptions/"+sub.ID+"?done=changed")
}

// refund is what cancelling now gives back: the current term's charges.
func (p *Portal) refund(c *gin.Context, sub domain.Subscription) (int64, string, error) {
	entries, _, err := p.Store.Ledger(c.Request.Context(), sub.ID)
	if err != nil || sub.BillingStartedAt == nil {
		return 0, "", err
	}
	var total int64
	currency := ""
	for _, e := range entries {
		if e.TermNumber == sub.TermNumber {
			total += e.AmountMinor
			currency = e.Currency
		}
	}
	return total, currency, nil
}

func (p *Portal) cancelForm(c *gin.Context) {
	sub, agent, ok := p.agentsSubscription(c)
	if !ok {
		return
	}
	if can := p.permissions(agent, sub)["cancel"]; !can.Allowed {
		p.fail(c, http.StatusConflict, can.Reason)
		return
	}
	amount, currency, err := p.refund(c, sub)
	if err != nil {
		p.unavailable(c, err)
		return
	}
	k := newCatalog(p.Store)
	v := p.views(c.Request.Context(), k, []domain.Subscription{sub}, false)[0]
	p.render(c, http.StatusOK, "a_cancel", gin.H{"Title": "Cancel " + v.Name, "Sub": v, "Refund": amount, "Currency": currency,
		"Ending": p.ending(c, k, sub), "Key": uuid.NewString(), "Section": "customers"})
}

func (p *Portal) cancel(c *gin.Context) {
	p.end(c, "cancel", "cancelled")
}

func (p *Portal) agentDeactivateForm(c *gin.Context) {
	sub, agent, ok := p.agentsSubscription(c)
	if !ok {
		return
	}
	if can := p.permissions(agent, sub)["deactivate"]; !can.Allowed {
		p.fail(c, http.StatusConflict, can.Reason)
		return
	}
	p.renderDeactivate(c, sub, "/portal/partner/subscriptions/"+sub.ID)
}

func (p *Portal) agentDeactivate(c *gin.Context) {
	p.end(c, "deactivate", "deactivated")
}

func (p *Portal) end(c *gin.Context, action, done string) {
	sub, agent, ok := p.agentsSubscription(c)
	if !ok {
		return
	}
	if _, ok := p.call(c, agent, http.MethodPost, "/v1/subscriptions/"+sub.ID+"/"+action, nil, formKey(c)); !ok {
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/partner/subscriptions/"+sub.ID+"?done="+done)
}

// formKey is the Idempotency-Key of a form: drawn when the form was shown,
// so a form sent twice (double click, reload) acts once.
func formKey(c *gin.Context) string {
	key := c.PostForm("key")
	if key == "" || len(key) > 100 {
		key = uuid.NewString()
	}
	return "portal:" + key
}
