package portal

// Pages of customer contacts: their customer's subscriptions, set-up on a
// site, key contacts, installed apps and deactivation.

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

// notices are the fixed messages a redirect may ask a page to show.
var notices = map[string]string{
	"added":       "The contact was added and has been sent an email to sign in.",
	"roles":       "The roles were changed.",
	"primary":     "The primary role was handed over.",
	"removed":     "The contact was removed.",
	"deactivated": "The subscription was deactivated.",
	"cancelled":   "The subscription was cancelled.",
	"changed":     "The subscription was changed.",
	"transferred": "The subscription was moved to the billing account; the customer's contacts were emailed.",
	"bought":      "The subscription was bought. Send the set-up link to the customer.",
	"site":        "The site was chosen. Continue to the publisher to finish setting up.",
}

func notice(c *gin.Context) string { return notices[c.Query("done")] }

func (p *Portal) customerName(c *gin.Context, ref store.CustomerRef) string {
	if cu, err := p.Store.Customer(c.Request.Context(), ref.PartnerID, ref.CustomerID); err == nil {
		return cu.Name
	}
	return ref.CustomerID
}

func (p *Portal) customerSubscriptions(c *gin.Context) {
	ref := customerRef(c)
	page, err := p.list(c, ref.PartnerID, ref.CustomerID)
	if err != nil {
		p.unavailable(c, err)
		return
	}
	p.render(c, http.StatusOK, "c_subscriptions", gin.H{"Title": "Subscriptions", "Customer": p.customerName(c, ref),
		"Tab": page.Tab, "Page": page, "Subs": p.views(c.Request.Context(), newCatalog(p.Store), page.Items, false), "Section": "subscriptions"})
}

func (p *Portal) customerSubscription(c *gin.Context) {
	sub, ok := p.ownSubscription(c)
	if !ok {
		return
	}
	v := p.view(c.Request.Context(), sub, true)
	p.render(c, http.StatusOK, "c_subscription", gin.H{"Title": v.Name, "Sub": v, "Notice": notice(c), "Section": "subscriptions"})
}

func (p *Portal) setUpForm(c *gin.Context) {
	sub, ok := p.ownSubscription(c)
	if !ok {
		return
	}
	p.renderSetUp(c, sub, http.StatusOK, "")
}

func (p *Portal) renderSetUp(c *gin.Context, sub domain.Subscription, status int, problem string) {
	v := p.view(c.Request.Context(), sub, false)
	if !v.NeedsSetup {
		c.Redirect(http.StatusSeeOther, "/portal/subscriptions/"+sub.ID)
		return
	}
	sites, _, err := p.Store.Sites(c.Request.Context(), customerRef(c), store.Page{Limit: 100})
	if err != nil {
		p.unavailable(c, err)
		return
	}
	p.render(c, status, "c_setup", gin.H{"Title": "Set up " + v.Name, "Sub": v, "Sites": sites, "Error": problem,
		"Key": uuid.NewString(), "Section": "subscriptions"})
}

// setUp records the chosen (or new) site, then shows the way on to the
// publisher's landing page with the authorization code.
func (p *Portal) setUp(c *gin.Context) {
	sub, ok := p.ownSubscription(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	ref, actor := customerRef(c), contactActor(c)
	siteID := c.PostForm("site")
	if siteID == "" {
		p.renderSetUp(c, sub, http.StatusUnprocessableEntity, "Choose a site, or add a new one.")
		return
	}
	if siteID == "new" {
		raw, name := strings.TrimSpace(c.PostForm("url")), strings.TrimSpace(c.PostForm("name"))
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(raw) > 2048 || len(name) > 256 {
			p.renderSetUp(c, sub, http.StatusUnprocessableEntity, "The site's address must be a full web address, such as https://example.com.")
			return
		}
		if name == "" {
			name = u.Host
		}
		h := sha256.Sum256([]byte(name + "\x00" + raw))
		site, _, err := p.Store.CreateSite(ctx, ref, name, raw, actor.String(),
			store.CreationKey{Key: "portal:" + c.PostForm("key"), Hash: h[:]})
		switch {
		case errors.Is(err, store.ErrSiteExists):
			p.renderSetUp(c, sub, http.StatusUnprocessableEntity, "You have a site with this address already: choose it from the list.")
			return
		case errors.Is(err, store.ErrIdempotencyKeyReused):
			p.renderSetUp(c, sub, http.StatusUnprocessableEntity, "This form was sent already. Please choose again.")
			return
		case err != nil:
			p.unavailable(c, err)
			return
		}
		siteID = site.ID
	}
	_, err := p.API.ChooseSiteAsContact(ctx, actor, sub.ID, siteID, formKey(c))
	var prob *api.Problem
	if errors.As(err, &prob) && prob.Status < 500 {
		p.renderSetUp(c, sub, http.StatusUnprocessableEntity, "That site cannot be chosen for this subscription.")
		return
	}
	if err != nil {
		p.unavailable(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/subscriptions/"+sub.ID+"?done=site")
}

// ending lists every subscription that ends with sub (linked ones, recursively).
func (p *Portal) ending(c *gin.Context, k *catalog, sub domain.Subscription) []ref {
	var out []ref
	seen := map[string]bool{sub.ID: true}
	queue := append([]string(nil), sub.LinkedSubscriptionIDs...)
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		l, err := p.Store.Subscription(c.Request.Context(), id)
		if err != nil || l.Status.Terminal() {
			continue
		}
		out = append(out, ref{ID: l.ID, Name: k.name(c.Request.Context(), l) + " (" + k.offer(c.Request.Context(), l.OfferID).Name + ")", Status: l.Status})
		queue = append(queue, l.LinkedSubscriptionIDs...)
	}
	return out
}

func (p *Portal) customerDeactivateForm(c *gin.Context) {
	sub, ok := p.ownSubscription(c)
	if !ok {
		return
	}
	p.renderDeactivate(c, sub, "/portal/subscriptions/"+sub.ID)
}

func (p *Portal) renderDeactivate(c *gin.Context, sub domain.Subscription, back string) {
	k := newCatalog(p.Store)
	v := p.views(c.Request.Context(), k, []domain.Subscription{sub}, false)[0]
	if sub.Status.Terminal() {
		p.fail(c, http.StatusConflict, "This subscription has ended already ("+string(sub.Status)+").")
		return
	}
	p.render(c, http.StatusOK, "deactivate", gin.H{"Title": "Deactivate " + v.Name, "Sub": v, "Ending": p.ending(c, k, sub),
		"Back": back, "Action": back + "/deactivate", "Key": uuid.NewString(), "Section": "subscriptions"})
}

func (p *Portal) customerDeactivate(c *gin.Context) {
	sub, ok := p.ownSubscription(c)
	if !ok {
		return
	}
	_, err := p.API.DeactivateAsContact(c.Request.Context(), contactActor(c), sub.ID, formKey(c))
	if !p.answered(c, err) {
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/subscriptions/"+sub.ID+"?done=deactivated")
}

// answered shows a refusal (or outage) of a change; false when it did.
func (p *Portal) answered(c *gin.Context, err error) bool {
	var prob *api.Problem
	switch {
	case err == nil:
		return true
	case errors.As(err, &prob) && prob.Status < 500:
		p.fail(c, prob.Status, prob.Detail)
	default:
		p.unavailable(c, err)
	}
	return false
}

func (p *Portal) keyContacts(c *gin.Context) {
	ref := customerRef(c)
	list, err := p.Store.Contacts(c.Request.Context(), ref)
	if err != nil {
		p.unavailable(c, err)
		return
	}
	partner := newCatalog(p.Store).partner(c.Request.Context(), ref.PartnerID)
	p.render(c, http.StatusOK, "c_contacts", gin.H{"Title": "Key contacts", "Customer": p.customerName(c, ref),
		"Partner": partner, "Contacts": list, "Section": "contacts"})
}

func (p *Portal) manageContacts(c *gin.Context) {
	p.renderManage(c, http.StatusOK, "")
}

func (p *Portal) renderManage(c *gin.Context, status int, problem string) {
	ref := customerRef(c)
	list, err := p.Store.Contacts(c.Request.Context(), ref)
	if err != nil {
		p.unavailable(c, err)
		return
	}
	me := *identity(c).ContactID
	var primary bool
	for _, k := range list {
		if k.ID == me {
			primary = k.Primary
		}
	}
	p.render(c, status, "c_manage", gin.H{"Title": "Manage contacts", "Contacts": list, "MeID": me, "IAmPrimary": primary,
		"Error": problem, "Notice": notice(c), "Section": "contacts"})
}

// contactChanged maps a contact rule's refusal to the manage page.
func (p *Portal) contactChanged(c *gin.Context, err error, done string) {
	switch {
	case err == nil:
		c.Redirect(http.StatusSeeOther, "/portal/contacts/manage?done="+done)
	case errors.Is(err, store.ErrInvalidEmail), errors.Is(err, store.ErrInvalidRoles), errors.Is(err, store.ErrContactExists),
		errors.Is(err, store.ErrPrimaryContact), errors.Is(err, store.ErrLastContact), errors.Is(err, store.ErrNotPrimary):
		msg := err.Error()
		p.renderManage(c, http.StatusUnprocessableEntity, strings.ToUpper(msg[:1])+msg[1:]+".")
	case errors.Is(err, store.ErrNotFound):
		p.notFound(c)
	default:
		p.unavailable(c, err)
	}
}

func (p *Portal) addContact(c *gin.Context) {
	_, err := p.Store.AddContact(c.Request.Context(), contactActor(c), strings.TrimSpace(c.PostForm("email")), c.PostFormArray("roles"))
	p.contactChanged(c, err, "added")
}

func (p *Portal) setRoles(c *gin.Context) {
	_, err := p.Store.SetContactRoles(c.Request.Context(), contactActor(c), c.Param("contact"), c.PostFormArray("roles"))
	p.contactChanged(c, err, "roles")
}

func (p *Portal) handOver(c *gin.Context) {
	p.contactChanged(c, p.Store.HandOverPrimary(c.Request.Context(), contactActor(c), c.Param("contact")), "primary")
}

func (p *Portal) removeContact(c *gin.Context) {
	p.contactChanged(c, p.Store.RemoveContact(c.Request.Context(), contactActor(c), c.Param("contact")), "removed")
}

// installedApps lists the customer's marketplace apps that are not over.
func (p *Portal) installedApps(c *gin.Context) {
	ref := customerRef(c)
	ctx := c.Request.Context()
	var apps []domain.Subscription
	for _, t := range []string{domain.TabActive, domain.TabUpcoming} {
		subs, err := p.tabItems(ctx, ref.PartnerID, ref.CustomerID, t)
		if err != nil {
			p.unavailable(c, err)
			return
		}
		for _, s := range subs {
			if s.ParentSubscriptionID != nil {
				apps = append(apps, s)
			}
		}
	}
	p.render(c, http.StatusOK, "c_apps", gin.H{"Title": "Installed apps", "Apps": p.views(ctx, newCatalog(p.Store), apps, false),
		"Section": "apps"})
}
