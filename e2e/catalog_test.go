package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	seedfile "github.com/partnerhub/fulfillment/seed"
	"github.com/partnerhub/fulfillment/testenv"
)

// readCatalog pages through GET /v1/offers limit offers at a time.
func readCatalog(t *testing.T, p testenv.Partner, limit int) []map[string]any {
	t.Helper()
	var offers []map[string]any
	target := "/v1/offers?limit=" + strconv.Itoa(limit)
	for pages := 1; ; pages++ {
		r := p.Do(http.MethodGet, target, nil)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		items := r.Body["items"].([]any)
		require.LessOrEqual(t, len(items), limit)
		for _, item := range items {
			offers = append(offers, item.(map[string]any))
		}
		next, _ := r.Body["next_cursor"].(string)
		if next == "" {
			require.Nil(t, r.Body["next_cursor"], "the last page says null")
			return offers
		}
		require.Less(t, pages, 20, "paging does not end")
		target = "/v1/offers?limit=" + strconv.Itoa(limit) + "&cursor=" + url.QueryEscape(next)
	}
}

// planOf finds a plan of an offer read from the catalog.
func catalogPlan(t *testing.T, offer map[string]any, id string) map[string]any {
	t.Helper()
	for _, p := range offer["plans"].([]any) {
		if plan := p.(map[string]any); plan["id"] == id {
			return plan
		}
	}
	t.Fatalf("offer %s has no plan %s: %v", offer["id"], id, offer["plans"])
	return nil
}

func catalogPeriod(t *testing.T, iso any) domain.Period {
	t.Helper()
	p, err := domain.ParsePeriod(iso.(string))
	require.NoError(t, err)
	return p
}

// A partner learns what to sell from GET /v1/offers, and buys exactly that:
// the plan's price, bounds, deadline, window and term it read are the ones
// the purchase, the billing and the app link then apply.
func TestCatalogPartnerBuysWhatItRead(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())

	// The whole catalog, whatever the page size, for both roles and both
	// partners: every offer of the seed file with every plan, as seeded.
	want := seededCatalog(t)
	offers := readCatalog(t, w.admin, 1)
	require.Equal(t, want, offers, "the catalog is the seed's, by offer id and plan id")
	assert.Equal(t, offers, readCatalog(t, w.admin, 2))
	assert.Equal(t, offers, readCatalog(t, w.admin, len(want)), "exactly one page")
	assert.Equal(t, offers, readCatalog(t, w.sales, 50), "a sales agent sells the same catalog")
	assert.Equal(t, offers, readCatalog(t, w.other, 50), "no offer is restricted to some partners")

	byID := map[string]map[string]any{}
	for _, o := range offers {
		byID[o["id"].(string)] = o
		for _, p := range o["plans"].([]any) {
			plan := p.(map[string]any)
			assert.Equal(t, plan["billing_frequency"], plan["billing_frequencies"].([]any)[0], "%s/%s: the default first", o["id"], plan["id"])
			if plan["id"] != "periods-3s" {
				assert.Equal(t, plan["term"], plan["billing_frequency"], "%s/%s: billed once per term", o["id"], plan["id"])
			}
		}
	}
	analytics, app, docs := byID["analytics"], byID["insights-app"], byID["docs"]
	require.NotNil(t, analytics)
	require.NotNil(t, app)
	require.NotNil(t, docs)
	assert.Equal(t, "saas", analytics["kind"])
	assert.Equal(t, []any{}, analytics["parent_offer_ids"])
	assert.Equal(t, "Contoso", analytics["publisher_name"])
	assert.Equal(t, "https://contoso.example/setup", analytics["landing_url"])
	assert.Contains(t, analytics["setup_instructions"], "invite users")
	assert.Equal(t, "app", app["kind"])
	assert.Equal(t, []any{"analytics"}, app["parent_offer_ids"])
	assert.Nil(t, app["setup_instructions"])
	assert.Equal(t, "litware", docs["publisher_id"])
	assert.Equal(t, map[string]any{
		"id": "annual", "name": "Annual", "unit_price_minor": float64(900), "currency": "EUR", "term": "P1Y",
		"billing_frequency": "P1Y", "billing_frequencies": []any{"P1Y"}, "min_quantity": float64(1), "max_quantity": float64(10),
		"cancellation_window": "P7D", "activation_deadline": "P30D",
		"plan_change_veto_window": "PT1H", "payment_grace_period": "P30D", // the defaults: the seed names neither
	}, catalogPlan(t, docs, "annual"))

	// One offer reads as it is listed; unknown ids are 404 problems.
	one := w.sales.Do(http.MethodGet, "/v1/offers/insights-app", nil)
	require.Equal(t, http.StatusOK, one.Status, one.String())
	assert.Equal(t, app, one.Body)
	for _, unknown := range []string{"no-such-offer", "Analytics", url.PathEscape("nul\x00id")} {
		mustProblem(t, w.admin.Do(http.MethodGet, "/v1/offers/"+unknown, nil), http.StatusNotFound, "not_found", unknown)
	}
	mustProblem(t, w.Do(http.MethodGet, "/v1/offers", nil), http.StatusUnauthorized, "unauthenticated")
	mustProblem(t, w.Do(http.MethodGet, "/v1/offers/analytics", nil), http.StatusUnauthorized, "unauthenticated")
	for _, bad := range []string{"limit=0", "limit=101", "limit=ten", "cursor=bogus", "cursor=" + url.QueryEscape(partnerListCursor(t, w))} {
		mustProblem(t, w.admin.Do(http.MethodGet, "/v1/offers?"+bad, nil), http.StatusBadRequest, "invalid_request", bad)
	}

	// Buy the plan read, at the quantity bounds read.
	plan := catalogPlan(t, analytics, "short-window")
	minQ, maxQ := int(plan["min_quantity"].(float64)), int(plan["max_quantity"].(float64))
	buy := func(q int) testenv.Response {
		return w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": analytics["id"], "plan_id": plan["id"], "quantity": q})
	}
	mustProblem(t, buy(maxQ+1), http.StatusUnprocessableEntity, "validation_failed", "above the max_quantity read")
	mustProblem(t, buy(minQ-1), http.StatusUnprocessableEntity, "validation_failed", "below the min_quantity read")
	bought := buy(maxQ)
	require.Equal(t, http.StatusCreated, bought.Status, bought.String())
	assert.Equal(t, catalogPeriod(t, plan["activation_deadline"]).AddTo(timeField(t, bought, "created_at")), timeField(t, bought, "activation_deadline"),
		"the activation deadline read")
	link := bought.Body["publisher_link"].(map[string]any)
	require.NotNil(t, link)
	u, err := url.Parse(link["url"].(string))
	require.NoError(t, err)
	assert.Equal(t, analytics["landing_url"], u.Scheme+"://"+u.Host+u.Path, "the link opens the landing page read")

	active := w.fulfill(t, bought, maxQ)
	require.Equal(t, "active", active.Str("status"), active.String())
	start := timeField(t, active, "billing_started_at")
	assert.Equal(t, catalogPeriod(t, plan["term"]).AddTo(start), timeField(t, active, "term_end"), "the term read")
	assert.Equal(t, catalogPeriod(t, plan["cancellation_window"]).AddTo(start), timeField(t, active, "cancellation_window_ends_at"), "the window read")
	bill := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+bought.Str("id")+"/billing", nil)
	require.Equal(t, http.StatusOK, bill.Status, bill.String())
	items := bill.Body["items"].([]any)
	require.Len(t, items, 1, bill.String())
	charge := items[0].(map[string]any)
	assert.Equal(t, "charge", charge["kind"])
	assert.EqualValues(t, int64(maxQ)*int64(plan["unit_price_minor"].(float64)), charge["amount_minor"], "quantity × the unit price read")
	assert.Equal(t, plan["currency"], charge["currency"])
	periodEnd, err := time.Parse(time.RFC3339Nano, charge["period_end"].(string))
	require.NoError(t, err)
	assert.Equal(t, catalogPeriod(t, plan["billing_frequency"]).AddTo(start), periodEnd, "one charge per billing_frequency")

	// The app, on a parent whose offer is in the parent_offer_ids read.
	appPlan := app["plans"].([]any)[0].(map[string]any)
	installed := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": app["id"], "plan_id": appPlan["id"],
		"quantity": appPlan["min_quantity"], "parent_subscription_id": bought.Str("id")})
	require.Equal(t, http.StatusCreated, installed.Status, installed.String())
	assert.Contains(t, app["parent_offer_ids"], bought.Str("offer_id"))
	// Not on an offer outside parent_offer_ids.
	other := w.buy(t, "docs", "annual", 1)
	require.NotContains(t, app["parent_offer_ids"], "docs")
	r := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": app["id"], "plan_id": appPlan["id"],
		"quantity": appPlan["min_quantity"], "parent_subscription_id": other.Str("id"), "nickname": uuid.NewString()})
	mustProblem(t, r, http.StatusUnprocessableEntity, "validation_failed")
}

// seededCatalog is what GET /v1/offers must answer for the e2e seed file:
// offers by id in byte order, each plan by id, billed once per term.
func seededCatalog(t *testing.T) []map[string]any {
	t.Helper()
	file, err := seedfile.Parse(seed(""))
	require.NoError(t, err)
	publishers := map[string]seedfile.Publisher{}
	for _, p := range file.Publishers {
		publishers[p.ID] = p
	}
	offers := slices.Clone(file.Offers)
	slices.SortFunc(offers, func(a, b seedfile.Offer) int { return strings.Compare(a.ID, b.ID) })
	var want []map[string]any
	for _, o := range offers {
		plans := slices.Clone(o.Plans)
		slices.SortFunc(plans, func(a, b domain.Plan) int { return strings.Compare(a.ID, b.ID) })
		wirePlans := []map[string]any{}
		for _, p := range plans {
			wirePlans = append(wirePlans, map[string]any{"id": p.ID, "name": p.Name, "unit_price_minor": p.UnitPriceMinor,
				"currency": p.Currency, "term": p.Term, "billing_frequency": p.Frequency(), "billing_frequencies": p.Frequencies(), "min_quantity": p.MinQuantity,
				"max_quantity": p.MaxQuantity, "cancellation_window": p.CancellationWindow, "activation_deadline": p.ActivationDeadline,
				"plan_change_veto_window": p.VetoWindow(), "payment_grace_period": p.GracePeriod()})
		}
		parents := o.ParentOfferIDs
		if parents == nil {
			parents = []string{}
		}
		pub := publishers[o.PublisherID]
		offer := map[string]any{"id": o.ID, "name": o.Name, "kind": o.Kind, "publisher_id": o.PublisherID, "publisher_name": pub.Name,
			"parent_offer_ids": parents, "landing_url": pub.LandingURL, "setup_instructions": o.SetupInstructions, "plans": wirePlans}
		raw, err := json.Marshal(offer) // as JSON reads it back: numbers as float64, arrays as []any
		require.NoError(t, err)
		var decoded map[string]any
		require.NoError(t, json.Unmarshal(raw, &decoded))
		want = append(want, decoded)
	}
	require.NotEmpty(t, want)
	return want
}

// partnerListCursor is a real cursor of GET /v1/subscriptions: not an offer cursor.
func partnerListCursor(t *testing.T, w *world) string {
	t.Helper()
	w.buy(t, "analytics", "annual", 1)
	w.buy(t, "analytics", "annual", 1)
	r := w.admin.Do(http.MethodGet, "/v1/subscriptions?limit=1", nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	cursor, _ := r.Body["next_cursor"].(string)
	require.NotEmpty(t, cursor, r.String())
	return cursor
}
