package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/testenv"
)

// Tenant isolation: a partner sees only its own customers and subscriptions,
// a publisher only subscriptions of its own offers, and another tenant's id
// answers exactly like an id that does not exist (404, never 403). A sales
// agent is refused every admin action (403) and changes nothing.
//
// The table is keyed by the router's own routes: a route added without a case
// here fails TestIsolationCoversEveryRoute, and a route with an id cannot be
// covered without the cross-tenant sweep.

// isolationCase is what one route must prove.
type isolationCase struct {
	// sweep sends the route another tenant's id and unknown ids; required for
	// every route with :id. body is what is sent (valid, so that only
	// ownership can refuse it).
	sweep *idSweep
	// check proves the route's own tenant promises (lists, roles, codes).
	check func(t *testing.T, x *isolationWorld)
}

type idSweep struct{ body any }

// isolationTable covers every route of api.Server.Router().
func isolationTable() map[string]isolationCase {
	sub := func(body any) *idSweep { return &idSweep{body: body} }
	return map[string]isolationCase{
		"GET /healthz":      {check: publicRoute("/healthz")},
		"GET /readyz":       {check: publicRoute("/readyz")},
		"GET /openapi.json": {check: publicRoute("/openapi.json")},
		"GET /metrics":      {check: publicRoute("/metrics")},

		"POST /v1/customers":    {check: createCustomerInOwnNamespace},
		"GET /v1/customers":     {check: listOnlyOwnCustomers},
		"GET /v1/customers/:id": {sweep: sub(nil)},

		"GET /v1/customers/:id/contacts":          {sweep: sub(nil)},
		"GET /v1/customers/:id/sites":             {sweep: sub(nil)},
		"POST /v1/customers/:id/sites":            {sweep: sub(map[string]any{"url": "https://attacker.example"})},
		"GET /v1/customers/:id/billing-accounts":  {sweep: sub(nil)},
		"POST /v1/customers/:id/billing-accounts": {sweep: sub(map[string]any{"name": "Attacker"})},
		"POST /v1/subscriptions/:id/transfer": {
			sweep: sub(map[string]any{"billing_account_id": "ba_attacker"}),
			check: salesAgentRefused(http.MethodPost, "/transfer", map[string]any{"billing_account_id": "ba_attacker"}),
		},
		"POST /v1/subscriptions":    {check: purchaseOnlyForOwnCustomersAndParents},
		"GET /v1/subscriptions":     {check: listOnlyOwnSubscriptions},
		"GET /v1/subscriptions/:id": {sweep: sub(nil)},
		"PATCH /v1/subscriptions/:id": {
			sweep: sub(map[string]any{"quantity": 2, "nickname": "taken over"}),
			check: salesAgentPatches,
		},
		"POST /v1/subscriptions/:id/cancel": {
			sweep: sub(nil), check: salesAgentRefused(http.MethodPost, "/cancel", nil),
		},
		"POST /v1/subscriptions/:id/deactivate": {
			sweep: sub(nil), check: salesAgentRefused(http.MethodPost, "/deactivate", nil),
		},
		"POST /v1/subscriptions/:id/plan-change": {
			sweep: sub(map[string]any{"plan_id": "pc-premium"}),
			check: salesAgentRefused(http.MethodPost, "/plan-change", map[string]any{"plan_id": "pc-premium"}),
		},
		"DELETE /v1/subscriptions/:id/plan-change": {
			sweep: sub(nil), check: salesAgentRefused(http.MethodDelete, "/plan-change", nil),
		},
		"GET /v1/subscriptions/:id/events":  {sweep: sub(nil)},
		"GET /v1/subscriptions/:id/billing": {sweep: sub(nil)},

		"POST /v1/publisher/resolve":                              {check: resolveOnlyOwnCodes},
		"POST /v1/publisher/subscriptions/:id/licenses":           {sweep: sub(map[string]any{"assigned": 1})},
		"POST /v1/publisher/subscriptions/:id/activate":           {sweep: sub(map[string]any{"site_url": "https://attacker.example"})},
		"POST /v1/publisher/subscriptions/:id/plan-change/refuse": {sweep: sub(map[string]any{"reason": "not yours"})},
		"POST /v1/publisher/subscriptions/:id/plan-change/accept": {sweep: sub(nil)},

		// The catalog is shared: every partner reads the same offers, and
		// another tenant's ids are no offers.
		"GET /v1/offers":     {check: catalogIsShared},
		"GET /v1/offers/:id": {sweep: sub(nil), check: catalogIsShared},

		"GET /v1/publisher/subscriptions":     {check: publisherListsOnlyOwnSubscriptions},
		"GET /v1/publisher/subscriptions/:id": {sweep: sub(nil)},

		"GET /v1/billing/statements":        {check: statementsOnlyOfOwnCustomers},
		"POST /v1/billing/events":           {check: billingEventsOnlyForOwnSubscriptions},
		"GET /v1/ops/reconciliation/latest": {check: opsRefusesPartners},
	}
}

// noMetrics makes the router list /metrics as the running service does.
type noMetrics struct{}

func (noMetrics) ObserveRequest(string, string, int, time.Duration) {}
func (noMetrics) Handler() http.Handler                             { return http.NotFoundHandler() }

// routerRoutes lists "METHOD /path" of every route the API serves.
func routerRoutes() []string {
	var routes []string
	for _, r := range (&api.Server{Metrics: noMetrics{}}).Router().Routes() {
		routes = append(routes, r.Method+" "+r.Path)
	}
	slices.Sort(routes)
	return routes
}

func TestIsolationCoversEveryRoute(t *testing.T) {
	t.Parallel()
	table := isolationTable()
	routes := routerRoutes()
	require.NotEmpty(t, routes)
	for _, route := range routes {
		c, ok := table[route]
		if !assert.True(t, ok, "route %s has no tenant-isolation case: add one to isolationTable", route) {
			continue
		}
		if strings.Contains(route, ":id") {
			assert.NotNil(t, c.sweep, "route %s takes an id: its case needs the cross-tenant sweep", route)
		} else {
			assert.NotNil(t, c.check, "route %s: its case checks nothing", route)
		}
	}
	for route := range table {
		assert.Contains(t, routes, route, "isolationTable has a case for %s, which the router does not serve", route)
	}
}

// isolationWorld: fabrikam (alice admin, bob sales) bought Contoso for
// woodgrove; northwind (nina admin) bought Litware for tailspin.
type isolationWorld struct {
	*world
	fab, nw         string // subscription ids
	fabCode, nwCode string // their authorization codes
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	started := time.Now()
	table := isolationTable()
	for _, route := range routerRoutes() {
		require.Contains(t, table, route, "see TestIsolationCoversEveryRoute")
	}
	w := newWorld(t, testenvOpts())
	x := &isolationWorld{world: w}
	fab := w.buy(t, "analytics", "annual", 5)
	nw := w.other.Purchase(map[string]any{"customer_id": "tailspin", "offer_id": "docs", "plan_id": "annual", "quantity": 2})
	require.Equal(t, http.StatusCreated, nw.Status, nw.String())
	x.fab, x.nw = fab.Str("id"), nw.Str("id")
	x.fabCode, x.nwCode = trustCode(t, fab), trustCode(t, nw)
	t.Logf("stack up and two purchases in %s", time.Since(started).Round(time.Millisecond))

	for _, route := range routerRoutes() {
		c := table[route]
		t.Run(route, func(t *testing.T) {
			if c.sweep != nil {
				x.sweep(t, route, c.sweep)
			}
			if c.check != nil {
				c.check(t, x)
			}
		})
	}

	// Nothing another tenant or the sales agent sent changed anything.
	got := trustSubscription(t, w.admin, x.fab)
	assert.Equal(t, "pending_fulfillment", got.Str("status"))
	assert.EqualValues(t, 5, got.Body["quantity"])
	assert.Equal(t, true, got.Body["auto_renew"])
	assert.EqualValues(t, 0, got.Body["licenses_assigned"])
	assert.Equal(t, false, got.Body["fulfillment_confirmed"])
	assert.Nil(t, got.Body["site_url"])
	assert.Equal(t, "set by the sales agent", got.Str("nickname"), "the sales agent's nickname change is the only change")
	fabEvents, nwEvents := trustEvents(t, w.admin, x.fab), trustEvents(t, w.other, x.nw)
	for _, forbidden := range []string{"link_resolved", "licenses_assigned", "fulfillment_confirmed", "quantity_changed",
		"auto_renew_changed", "reseller_changed", "nickname_changed", "cancelled", "deactivated"} {
		if forbidden != "nickname_changed" {
			assert.NotContains(t, fabEvents, forbidden)
		}
		assert.NotContains(t, nwEvents, forbidden)
	}
	got = trustSubscription(t, w.other, x.nw)
	assert.Equal(t, "pending_fulfillment", got.Str("status"))
	assert.EqualValues(t, 2, got.Body["quantity"])
	assert.Nil(t, got.Body["nickname"])
	assert.EqualValues(t, 0, got.Body["licenses_assigned"])
	assert.Equal(t, false, got.Body["fulfillment_confirmed"])
	t.Logf("TestIsolation took %s", time.Since(started).Round(time.Millisecond))
}

// sweep sends the route other tenants' ids and unknown ids: every answer is
// 404 not_found, and another tenant's id answers exactly like an unknown one.
func (x *isolationWorld) sweep(t *testing.T, route string, s *idSweep) {
	method, pattern, _ := strings.Cut(route, " ")
	path := func(id string) string { return strings.Replace(pattern, ":id", url.PathEscape(id), 1) }
	type attempt struct {
		who     string
		send    func(path string) testenv.Response
		foreign string // an id that exists, of another tenant
	}
	var attempts []attempt
	partner := func(who string, p testenv.Partner, foreign string) attempt {
		return attempt{who, func(path string) testenv.Response { return p.Do(method, path, s.body) }, foreign}
	}
	publisher := func(who string, p testenv.Publisher, foreign string) attempt {
		if method == http.MethodGet { // a signed read
			return attempt{who, func(path string) testenv.Response { return p.Get(path) }, foreign}
		}
		return attempt{who, func(path string) testenv.Response { return p.Send(path, s.body) }, foreign}
	}
	switch {
	case strings.HasPrefix(pattern, "/v1/customers/"):
		attempts = []attempt{
			partner("northwind admin", x.other, "woodgrove"),
			partner("fabrikam admin", x.admin, "tailspin"),
			partner("fabrikam sales", x.sales, "tailspin"),
		}
	case strings.HasPrefix(pattern, "/v1/subscriptions/"):
		attempts = []attempt{
			partner("northwind admin", x.other, x.fab),
			partner("fabrikam admin", x.admin, x.nw),
			partner("fabrikam sales", x.sales, x.nw), // never 403 for another partner's id, even for admin actions
		}
	case strings.HasPrefix(pattern, "/v1/offers/"):
		// Offers belong to no partner: other tenants' subscription and
		// customer ids are simply no offer ids.
		attempts = []attempt{
			partner("northwind admin", x.other, x.fab),
			partner("fabrikam sales", x.sales, x.nw),
			partner("fabrikam admin", x.admin, "tailspin"),
		}
	case strings.HasPrefix(pattern, "/v1/publisher/subscriptions/"):
		attempts = []attempt{
			publisher("litware", x.litware, x.fab),
			publisher("contoso", x.contoso, x.nw),
		}
	default:
		t.Fatalf("no sweep for %s: which tenant owns its ids?", route)
	}
	unknownIDs := []string{"sub_" + uuid.NewString(), "nul\x00id", "\xff\xfe", strings.Repeat("x", 300)}
	for _, a := range attempts {
		foreign := a.send(path(a.foreign))
		mustProblem(t, foreign, http.StatusNotFound, "not_found", "%s sent %s %s", a.who, method, path(a.foreign))
		for _, unknown := range unknownIDs {
			r := a.send(path(unknown))
			mustProblem(t, r, http.StatusNotFound, "not_found", "%s sent %s %s", a.who, method, path(unknown))
			if unknown == unknownIDs[0] {
				// No oracle: the foreign id's answer is the unknown id's, but for the id itself.
				assert.Equal(t, r.Str("title"), foreign.Str("title"))
				assert.Equal(t, strings.ReplaceAll(r.Str("detail"), unknown, "ID"),
					strings.ReplaceAll(foreign.Str("detail"), a.foreign, "ID"), "%s: foreign and unknown ids answer differently", a.who)
			}
		}
	}
}

// publicRoute: reachable without credentials, and shows no tenant's data.
func publicRoute(path string) func(t *testing.T, x *isolationWorld) {
	return func(t *testing.T, x *isolationWorld) {
		r := x.Do(http.MethodGet, path, nil)
		if path == "/metrics" && r.Status == http.StatusNotFound {
			t.Log("this build serves no /metrics")
		} else {
			require.Equal(t, http.StatusOK, r.Status, r.String())
		}
		for _, secret := range []string{x.fab, x.nw, x.fabCode, x.nwCode, "Woodgrove Bank", "Tailspin Toys"} {
			assert.NotContains(t, string(r.Raw), secret, "%s shows tenant data", path)
		}
	}
}

func createCustomerInOwnNamespace(t *testing.T, x *isolationWorld) {
	// Customer ids are per partner: northwind may use fabrikam's id, which
	// neither reveals (no 409) nor touches fabrikam's customer.
	r := x.other.Do(http.MethodPost, "/v1/customers", map[string]any{"id": "contoso-pharma", "name": "Northwind's own"})
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	assert.Equal(t, "northwind", r.Str("partner_id"))
	got := x.admin.Do(http.MethodGet, "/v1/customers/contoso-pharma", nil)
	require.Equal(t, http.StatusOK, got.Status, got.String())
	assert.Equal(t, "Contoso Pharma", got.Str("name"))
	assert.Equal(t, "fabrikam", got.Str("partner_id"))
	got = x.other.Do(http.MethodGet, "/v1/customers/contoso-pharma", nil)
	require.Equal(t, http.StatusOK, got.Status, got.String())
	assert.Equal(t, "Northwind's own", got.Str("name"))
}

func listOnlyOwnCustomers(t *testing.T, x *isolationWorld) {
	for partner, p := range map[string]testenv.Partner{"fabrikam": x.admin, "northwind": x.other} {
		r := p.Do(http.MethodGet, "/v1/customers", nil)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		items := r.Body["items"].([]any)
		require.NotEmpty(t, items)
		for _, item := range items {
			assert.Equal(t, partner, item.(map[string]any)["partner_id"], "%s sees %v", partner, item)
		}
	}
}

func purchaseOnlyForOwnCustomersAndParents(t *testing.T, x *isolationWorld) {
	// Another partner's customer is as unknown as a customer that does not exist.
	foreign := x.other.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual", "quantity": 1})
	mustProblem(t, foreign, http.StatusUnprocessableEntity, "validation_failed")
	unknown := x.other.Purchase(map[string]any{"customer_id": "no-such-customer", "offer_id": "analytics", "plan_id": "annual", "quantity": 1})
	mustProblem(t, unknown, http.StatusUnprocessableEntity, "validation_failed")
	assert.Equal(t, strings.ReplaceAll(unknown.Str("detail"), "no-such-customer", "ID"), strings.ReplaceAll(foreign.Str("detail"), "woodgrove", "ID"))

	// Another partner's subscription cannot be a parent, and says so like an unknown one.
	app := func(parent string) testenv.Response {
		return x.other.Purchase(map[string]any{"customer_id": "tailspin", "offer_id": "insights-app", "plan_id": "monthly",
			"quantity": 1, "parent_subscription_id": parent})
	}
	foreign = app(x.fab)
	mustProblem(t, foreign, http.StatusUnprocessableEntity, "validation_failed")
	missing := "sub_" + uuid.NewString()
	unknown = app(missing)
	mustProblem(t, unknown, http.StatusUnprocessableEntity, "validation_failed")
	assert.Equal(t, strings.ReplaceAll(unknown.Str("detail"), missing, "ID"), strings.ReplaceAll(foreign.Str("detail"), x.fab, "ID"))
	assert.Empty(t, trustSubscription(t, x.admin, x.fab).Body["linked_subscription_ids"])
}

func listOnlyOwnSubscriptions(t *testing.T, x *isolationWorld) {
	ids := func(p testenv.Partner, query string) []string {
		r := p.Do(http.MethodGet, "/v1/subscriptions"+query, nil)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		var ids []string
		for _, item := range r.Body["items"].([]any) {
			ids = append(ids, item.(map[string]any)["id"].(string))
		}
		return ids
	}
	for _, tab := range []string{"", "?tab=upcoming", "?limit=100"} {
		assert.Equal(t, []string{x.fab}, ids(x.admin, tab), "fabrikam's list%s", tab)
		assert.Equal(t, []string{x.fab}, ids(x.sales, tab), "fabrikam's sales agent's list%s", tab)
		assert.Equal(t, []string{x.nw}, ids(x.other, tab), "northwind's list%s", tab)
	}
	assert.Empty(t, ids(x.admin, "?customer_id=tailspin"), "filtering by another partner's customer")
	assert.Empty(t, ids(x.other, "?customer_id=woodgrove"), "filtering by another partner's customer")
}

func resolveOnlyOwnCodes(t *testing.T, x *isolationWorld) {
	for _, c := range []struct {
		who  string
		p    testenv.Publisher
		code string
	}{
		{"litware", x.litware, x.fabCode},
		{"contoso", x.contoso, x.nwCode},
		{"contoso", x.contoso, "ac_" + strings.Repeat("A", 43)},
	} {
		r := c.p.Send("/v1/publisher/resolve", map[string]any{"authorization_code": c.code})
		mustProblem(t, r, http.StatusNotFound, "not_found", "%s resolving %s", c.who, c.code)
		assert.Equal(t, "unknown or expired authorization code", r.Str("detail"))
		assert.NotContains(t, string(r.Raw), "Woodgrove")
		assert.NotContains(t, string(r.Raw), "Tailspin")
	}
}

// salesAgentRefused: the sales agent's admin action on its own partner's
// subscription is 403 forbidden_role, with any body.
func salesAgentRefused(method, suffix string, body any) func(t *testing.T, x *isolationWorld) {
	return func(t *testing.T, x *isolationWorld) {
		r := x.sales.Do(method, "/v1/subscriptions/"+x.fab+suffix, body)
		mustProblem(t, r, http.StatusForbidden, "forbidden_role", "sales agent %s", suffix)
		r = x.sales.Do(method, "/v1/subscriptions/"+x.fab+suffix, map[string]any{}, "Idempotency-Key", uuid.NewString())
		mustProblem(t, r, http.StatusForbidden, "forbidden_role", "sales agent %s with a body and key", suffix)
		assert.Equal(t, "pending_fulfillment", trustSubscription(t, x.admin, x.fab).Str("status"))
	}
}

func salesAgentPatches(t *testing.T, x *isolationWorld) {
	for _, body := range []map[string]any{
		{"quantity": 6},
		{"auto_renew": false},
		{"quantity": 5},                  // even a no-op
		{"auto_renew": true},             // even a no-op
		{"nickname": "x", "quantity": 7}, // refused whole: the nickname is not applied either
		{"reseller_partner_id": "r-1", "auto_renew": false},
	} {
		r := x.sales.Do(http.MethodPatch, "/v1/subscriptions/"+x.fab, body)
		mustProblem(t, r, http.StatusForbidden, "forbidden_role", "sales agent PATCH %v", body)
	}
	got := trustSubscription(t, x.admin, x.fab)
	assert.EqualValues(t, 5, got.Body["quantity"])
	assert.Equal(t, true, got.Body["auto_renew"])
	assert.Nil(t, got.Body["nickname"])
	assert.Nil(t, got.Body["reseller_partner_id"])
	// The fields open to both roles stay open: the refusal is about the role, not the agent.
	r := x.sales.Do(http.MethodPatch, "/v1/subscriptions/"+x.fab, map[string]any{"nickname": "set by the sales agent"})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	assert.Equal(t, "set by the sales agent", r.Str("nickname"))
}

// catalogIsShared: both partners and both roles read the same catalog, and it
// carries no tenant's data.
func catalogIsShared(t *testing.T, x *isolationWorld) {
	for _, path := range []string{"/v1/offers", "/v1/offers/analytics"} {
		want := x.admin.Do(http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, want.Status, want.String())
		for _, p := range []testenv.Partner{x.sales, x.other} {
			r := p.Do(http.MethodGet, path, nil)
			require.Equal(t, http.StatusOK, r.Status, r.String())
			assert.JSONEq(t, string(want.Raw), string(r.Raw), path)
		}
		for _, secret := range []string{x.fab, x.nw, x.fabCode, x.nwCode, "Woodgrove Bank", "Tailspin Toys", "fabrikam", "northwind"} {
			assert.NotContains(t, string(want.Raw), secret, "%s shows tenant data", path)
		}
	}
}

// publisherListsOnlyOwnSubscriptions: contoso sees fabrikam's purchase of its
// offer and not northwind's of litware's, and the other way round, whatever
// the filter; a partner's key reads nothing there.
func publisherListsOnlyOwnSubscriptions(t *testing.T, x *isolationWorld) {
	ids := func(p testenv.Publisher, query string) []string {
		r := p.Get("/v1/publisher/subscriptions" + query)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		out := []string{}
		for _, item := range r.Body["items"].([]any) {
			out = append(out, item.(map[string]any)["id"].(string))
		}
		return out
	}
	for _, query := range []string{"", "?status=pending_fulfillment", "?limit=100"} {
		assert.Equal(t, []string{x.fab}, ids(x.contoso, query), "contoso's list%s", query)
		assert.Equal(t, []string{x.nw}, ids(x.litware, query), "litware's list%s", query)
	}
	mustProblem(t, x.admin.Do(http.MethodGet, "/v1/publisher/subscriptions", nil), http.StatusUnauthorized, "unauthenticated")
}

// statementsOnlyOfOwnCustomers: another partner's customer answers exactly
// like one that does not exist (404), whatever the role.
func statementsOnlyOfOwnCustomers(t *testing.T, x *isolationWorld) {
	month := time.Now().UTC().Format("2006-01")
	statement := func(p testenv.Partner, customer string) testenv.Response {
		return p.Do(http.MethodGet, "/v1/billing/statements?month="+month+"&customer_id="+url.QueryEscape(customer), nil)
	}
	for who, c := range map[string]struct {
		p            testenv.Partner
		own, foreign string
	}{
		"northwind admin": {x.other, "tailspin", "woodgrove"},
		"fabrikam admin":  {x.admin, "woodgrove", "tailspin"},
		"fabrikam sales":  {x.sales, "woodgrove", "tailspin"},
	} {
		own := statement(c.p, c.own)
		require.Equal(t, http.StatusOK, own.Status, "%s: %s", who, own)
		foreign, unknown := statement(c.p, c.foreign), statement(c.p, "no-such-customer")
		mustProblem(t, foreign, http.StatusNotFound, "not_found", "%s asked for %s", who, c.foreign)
		mustProblem(t, unknown, http.StatusNotFound, "not_found", "%s asked for an unknown customer", who)
		assert.Equal(t, strings.ReplaceAll(unknown.Str("detail"), "no-such-customer", "ID"), strings.ReplaceAll(foreign.Str("detail"), c.foreign, "ID"))
	}
}

// opsRefusesPartners: a partner's key, whatever its role, is no ops key.
func opsRefusesPartners(t *testing.T, x *isolationWorld) {
	for who, p := range map[string]testenv.Partner{"fabrikam admin": x.admin, "fabrikam sales": x.sales, "northwind admin": x.other} {
		r := p.Do(http.MethodGet, "/v1/ops/reconciliation/latest", nil)
		mustProblem(t, r, http.StatusForbidden, "forbidden_role", "%s", who)
	}
	mustProblem(t, x.Do(http.MethodGet, "/v1/ops/reconciliation/latest", nil), http.StatusUnauthorized, "unauthenticated")
}

// billingEventsOnlyForOwnSubscriptions: a partner's billing system reaches
// only its partner's subscriptions (another partner's answers like an
// unknown id), and a partner's API key is no signature.
func billingEventsOnlyForOwnSubscriptions(t *testing.T, x *isolationWorld) {
	event := func(id string) map[string]any {
		return map[string]any{"event_id": "evt_" + uuid.NewString(), "type": "payment_failed", "subscription_id": id}
	}
	nw := x.billingSystem("northwind", NorthwindBillingSecret)
	foreign, unknown := nw.send(t, event(x.fab)), nw.send(t, event("sub_does_not_exist"))
	mustProblem(t, foreign, http.StatusNotFound, "not_found", "northwind's billing system, fabrikam's subscription")
	mustProblem(t, unknown, http.StatusNotFound, "not_found", "an unknown subscription")
	assert.Equal(t, strings.Replace(unknown.Str("detail"), "sub_does_not_exist", x.fab, 1), foreign.Str("detail"))
	fab := x.billingSystem("fabrikam", FabrikamBillingSecret)
	mustProblem(t, fab.send(t, event(x.nw)), http.StatusNotFound, "not_found", "fabrikam's billing system, northwind's subscription")
	mustProblem(t, x.billingSystem("fabrikam", NorthwindBillingSecret).send(t, event(x.fab)), http.StatusUnauthorized, "unauthenticated",
		"northwind's secret in fabrikam's name")
	mustProblem(t, x.admin.Do(http.MethodPost, "/v1/billing/events", event(x.fab)), http.StatusUnauthorized, "unauthenticated", "an API key")
	mustProblem(t, fab.send(t, event(x.fab)), http.StatusConflict, "invalid_state", "its own pending subscription: refused, unchanged")
}
