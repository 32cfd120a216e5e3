// Package e2e drives the real binary (separate api and worker processes)
// against a Temporal dev server and PostgreSQL over HTTP, as partners and as
// signing publishers would.
package e2e

// Keys and secrets of the end-to-end seed.
const (
	AdminKey       = "e2e_fabrikam_admin_alice_key"
	SalesKey       = "e2e_fabrikam_sales_bob_key"
	OtherAdminKey  = "e2e_northwind_admin_nina_key"
	ContosoSecret  = "whsec_ZTJlLWNvbnRvc28tc2lnbmluZy1zZWNyZXQtMDE="
	ContosoSecret2 = "whsec_ZTJlLWNvbnRvc28tc2lnbmluZy1zZWNyZXQtMDI="
	LitwareSecret  = "whsec_ZTJlLWxpdHdhcmUtc2lnbmluZy1zZWNyZXQtMDE="
	// Billing systems of the partners sign POST /v1/billing/events.
	FabrikamBillingSecret  = "whsec_ZTJlLWZhYnJpa2FtLWJpbGxpbmctc2VjcmV0LTAx"
	NorthwindBillingSecret = "whsec_ZTJlLW5vcnRod2luZC1iaWxsaW5nLXNlY3JldC0wMQ=="
)

// Seed has plans whose windows, deadlines and terms last seconds.
// WebhookURL placeholders are replaced per test.
const Seed = `{
  "publishers": [
    {"id": "contoso", "name": "Contoso", "landing_url": "https://contoso.example/setup",
     "webhook_url": WEBHOOK_URL, "signing_secret": "` + ContosoSecret + `", "signing_secrets": ["` + ContosoSecret2 + `"]},
    {"id": "litware", "name": "Litware", "landing_url": "https://litware.example/start",
     "webhook_url": null, "signing_secret": "` + LitwareSecret + `"}
  ],
  "offers": [
    {"id": "analytics", "publisher_id": "contoso", "name": "Contoso Analytics", "kind": "saas", "parent_offer_ids": [],
     "setup_instructions": "Sign in at https://contoso.example/admin with the customer's admin account and invite users.",
     "plans": [
       {"id": "annual", "name": "Annual", "term": "P1Y", "unit_price_minor": 1200, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "P7D", "activation_deadline": "P30D"},
       {"id": "quick-expiry", "name": "2-second activation deadline", "term": "P1Y", "unit_price_minor": 1200, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "P7D", "activation_deadline": "PT2S"},
       {"id": "short-term", "name": "4-second terms", "term": "PT4S", "unit_price_minor": 1000, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "PT2S", "activation_deadline": "PT1M"},
       {"id": "short-window", "name": "1-second window, long term", "term": "P1Y", "unit_price_minor": 1000, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "PT1S", "activation_deadline": "PT1M"},
       {"id": "deadline-8s", "name": "8-second activation deadline", "term": "P1Y", "unit_price_minor": 1200, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "P7D", "activation_deadline": "PT8S"},
       {"id": "term-8s", "name": "8-second terms", "term": "PT8S", "unit_price_minor": 700, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "PT2S", "activation_deadline": "PT1M"},
       {"id": "grace-6s", "name": "6-second payment grace", "term": "P1Y", "unit_price_minor": 500, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "P7D", "activation_deadline": "P30D",
        "payment_grace_period": "PT6S"},
       {"id": "periods-3s", "name": "12-second terms billed every 3 seconds", "term": "PT12S", "unit_price_minor": 1000,
        "currency": "USD", "min_quantity": 1, "max_quantity": 100, "cancellation_window": "PT2S", "activation_deadline": "PT1M",
        "billing_frequency": "PT3S", "billing_frequencies": ["PT12S", "PT6S"]},
       {"id": "pc-standard", "name": "Standard (8-second plan-change veto)", "term": "P1Y", "unit_price_minor": 1000, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "P7D", "activation_deadline": "P30D",
        "plan_change_veto_window": "PT8S"},
       {"id": "pc-standard-long-veto", "name": "Standard (10-minute plan-change veto)", "term": "P1Y", "unit_price_minor": 1000, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "P7D", "activation_deadline": "P30D",
        "plan_change_veto_window": "PT10M"},
       {"id": "pc-premium", "name": "Premium", "term": "P1Y", "unit_price_minor": 2500, "currency": "USD",
        "min_quantity": 1, "max_quantity": 50, "cancellation_window": "P7D", "activation_deadline": "P30D"},
       {"id": "pc-20s", "name": "20-second terms, 1-second plan-change veto", "term": "PT20S", "unit_price_minor": 700, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "PT2S", "activation_deadline": "PT1M",
        "plan_change_veto_window": "PT1S"},
       {"id": "pc-20s-lite", "name": "20-second terms, lite", "term": "PT20S", "unit_price_minor": 400, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "PT2S", "activation_deadline": "PT1M"}
     ]},
    {"id": "insights-app", "publisher_id": "contoso", "name": "Insights (app)", "kind": "app", "parent_offer_ids": ["analytics"],
     "plans": [
       {"id": "monthly", "name": "Monthly", "term": "P1M", "unit_price_minor": 300, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "P3D", "activation_deadline": "P30D"}
     ]},
    {"id": "docs", "publisher_id": "litware", "name": "Litware Docs", "kind": "saas", "parent_offer_ids": [],
     "plans": [
       {"id": "annual", "name": "Annual", "term": "P1Y", "unit_price_minor": 900, "currency": "EUR",
        "min_quantity": 1, "max_quantity": 10, "cancellation_window": "P7D", "activation_deadline": "P30D"}
     ]}
  ],
  "partners": [
    {"id": "fabrikam", "name": "Fabrikam", "billing_signing_secret": "` + FabrikamBillingSecret + `", "agents": [
      {"id": "alice", "role": "admin_agent", "api_key": "` + AdminKey + `", "email": "alice@fabrikam.test"},
      {"id": "bob", "role": "sales_agent", "api_key": "` + SalesKey + `", "email": "bob@fabrikam.test"}]},
    {"id": "northwind", "name": "Northwind", "billing_signing_secret": "` + NorthwindBillingSecret + `", "agents": [
      {"id": "nina", "role": "admin_agent", "api_key": "` + OtherAdminKey + `", "email": "nina@northwind.test"}]}
  ],
  "customers": [
    {"id": "woodgrove", "partner_id": "fabrikam", "name": "Woodgrove Bank"},
    {"id": "contoso-pharma", "partner_id": "fabrikam", "name": "Contoso Pharma"},
    {"id": "tailspin", "partner_id": "northwind", "name": "Tailspin Toys"}
  ]
}`
