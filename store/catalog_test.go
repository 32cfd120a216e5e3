package store_test

import (
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

func TestCatalogUpsertsAreIdempotent(t *testing.T) {
	f := newFixture(t)
	hook := "https://contoso.example/hooks"
	publisher := store.Publisher{ID: "contoso", Name: "Contoso", LandingURL: "https://contoso.example/setup"}
	offer := store.Offer{ID: "analytics", PublisherID: "contoso", Name: "Analytics", Kind: domain.OfferKindSaaS}
	plan := domain.Plan{ID: "std", OfferID: "analytics", Name: "Standard", Term: "P1Y", UnitPriceMinor: 1200, Currency: "USD",
		MinQuantity: 1, MaxQuantity: 10, CancellationWindow: "P7D", ActivationDeadline: "P30D"}
	partner := store.Partner{ID: "fabrikam", Name: "Fabrikam"}
	customer := store.Customer{PartnerID: "fabrikam", ID: "woodgrove", Name: "Woodgrove"}
	seed := func() {
		require.NoError(t, f.st.UpsertPublisher(f.ctx, publisher))
		require.NoError(t, f.st.UpsertOffer(f.ctx, offer))
		require.NoError(t, f.st.UpsertPlan(f.ctx, plan))
		require.NoError(t, f.st.UpsertPartner(f.ctx, partner))
		require.NoError(t, f.st.UpsertCustomer(f.ctx, customer))
	}
	seed()
	seed() // the seed command runs again unchanged
	tables := []string{"publishers", "offers", "plans", "partners", "customers"}
	for _, table := range tables {
		assert.Equal(t, 1, f.count(t, table), table)
	}

	gotPublisher, err := f.st.Publisher(f.ctx, "contoso")
	require.NoError(t, err)
	assert.Equal(t, publisher, gotPublisher)
	gotOffer, err := f.st.Offer(f.ctx, "analytics")
	require.NoError(t, err)
	assert.Empty(t, gotOffer.ParentOfferIDs, "nil parents are stored as {}")

	// The seed changes: every upsert updates in place.
	publisher.Name, publisher.LandingURL, publisher.WebhookURL = "Contoso Ltd", "https://contoso.example/v2", &hook
	offer.Name, offer.Kind, offer.ParentOfferIDs = "Analytics App", domain.OfferKindApp, pq.StringArray{"suite", "crm"}
	plan.Name, plan.UnitPriceMinor, plan.Currency, plan.MaxQuantity, plan.Term = "Standard+", 1500, "EUR", 20, "P1M"
	plan.CancellationWindow, plan.ActivationDeadline, plan.MinQuantity = "PT30S", "PT1M", 2
	partner.Name = "Fabrikam Inc"
	domainName := "woodgrove.example"
	customer.Name, customer.Domain = "Woodgrove Bank", &domainName
	seed()
	for _, table := range tables {
		assert.Equal(t, 1, f.count(t, table), table)
	}

	gotPublisher, err = f.st.Publisher(f.ctx, "contoso")
	require.NoError(t, err)
	assert.Equal(t, publisher, gotPublisher)
	gotOffer, err = f.st.Offer(f.ctx, "analytics")
	require.NoError(t, err)
	assert.Equal(t, offer, gotOffer)
	gotPlan, err := f.st.Plan(f.ctx, "analytics", "std")
	require.NoError(t, err)
	plan.PaymentGracePeriod = domain.DefaultPaymentGracePeriod // a plan naming none gets the default
	plan.PlanChangeVetoWindow = domain.DefaultPlanChangeVetoWindow
	assert.Equal(t, plan, gotPlan)
	gotPartner, err := f.st.Partner(f.ctx, "fabrikam")
	require.NoError(t, err)
	assert.Equal(t, partner, gotPartner)
	gotCustomer, err := f.st.Customer(f.ctx, "fabrikam", "woodgrove")
	require.NoError(t, err)
	assert.Equal(t, customer.Name, gotCustomer.Name)
	assert.Equal(t, customer.Domain, gotCustomer.Domain)

	_, err = f.st.Publisher(f.ctx, "nobody")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = f.st.Offer(f.ctx, "nothing")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = f.st.Plan(f.ctx, "analytics", "gold")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = f.st.Partner(f.ctx, "nobody")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func TestAgentByKey(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.st.UpsertPartner(f.ctx, store.Partner{ID: "fabrikam", Name: "Fabrikam"}))
	bob := store.Agent{PartnerID: "fabrikam", ID: "bob", Role: domain.RoleSalesAgent}
	require.NoError(t, f.st.UpsertAgent(f.ctx, bob, hash("key-bob")))
	bob.Role = domain.RoleAdminAgent // promoted by the next seed
	require.NoError(t, f.st.UpsertAgent(f.ctx, bob, hash("key-bob")))
	assert.Equal(t, 1, f.count(t, "agents"))
	assert.Equal(t, 1, f.count(t, "api_keys"))

	got, err := f.st.AgentByKey(f.ctx, hash("key-bob"))
	require.NoError(t, err)
	assert.Equal(t, bob, got)

	require.NoError(t, f.st.UpsertAgent(f.ctx, bob, hash("key-bob-2")), "a second key for the same agent")
	got, err = f.st.AgentByKey(f.ctx, hash("key-bob-2"))
	require.NoError(t, err)
	assert.Equal(t, bob, got)

	_, err = f.st.AgentByKey(f.ctx, hash("key-mallory"))
	assert.ErrorIs(t, err, store.ErrNotFound, "a different hash finds nobody")
	_, err = f.st.AgentByKey(f.ctx, []byte("key-bob"))
	assert.ErrorIs(t, err, store.ErrNotFound, "the raw key is not a hash")

	f.exec(t, `UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1`, hash("key-bob"))
	_, err = f.st.AgentByKey(f.ctx, hash("key-bob"))
	assert.ErrorIs(t, err, store.ErrNotFound, "a revoked key finds nobody")
}

func TestPublisherSecrets(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"contoso", "litware"} {
		require.NoError(t, f.st.UpsertPublisher(f.ctx, store.Publisher{ID: id, Name: id, LandingURL: "https://" + id + ".example"}))
	}
	require.NoError(t, f.st.AddPublisherSecret(f.ctx, "contoso", "fp-old", []byte("cipher-old")))
	require.NoError(t, f.st.AddPublisherSecret(f.ctx, "contoso", "fp-new", []byte("cipher-new")))
	require.NoError(t, f.st.AddPublisherSecret(f.ctx, "contoso", "fp-old", []byte("cipher-other")), "adding again is not an error")
	require.NoError(t, f.st.AddPublisherSecret(f.ctx, "litware", "fp-old", []byte("cipher-litware")))
	assert.Equal(t, 2, f.count(t, "publisher_secrets WHERE publisher_id = 'contoso'"), "the same fingerprint is kept once")

	// Both reads answer alike: the secrets alone, and with their publisher
	// (one statement, what a callback's verification reads).
	active := func(id string, at time.Time) ([][]byte, error) {
		t.Helper()
		secrets, err := f.st.PublisherSecrets(f.ctx, id, at)
		require.NoError(t, err)
		pub, withPublisher, err := f.st.PublisherWithSecrets(f.ctx, id, at)
		require.NoError(t, err)
		assert.Equal(t, id, pub.ID)
		assert.Equal(t, "https://"+id+".example", pub.LandingURL)
		if len(secrets) == 0 {
			assert.Empty(t, withPublisher)
		} else {
			assert.Equal(t, secrets, withPublisher)
		}
		return secrets, err
	}
	now := time.Now()
	secrets, err := active("contoso", now)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("cipher-new"), []byte("cipher-old")}, secrets, "newest first, first ciphertext kept")

	// Rotation: the old secret stays valid for an hour of grace.
	require.NoError(t, f.st.ExpirePublisherSecrets(f.ctx, "contoso", "fp-new", now.Add(time.Hour)))
	secrets, err = active("contoso", now)
	require.NoError(t, err)
	assert.Len(t, secrets, 2, "inside the grace period both verify")
	secrets, err = active("contoso", now.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("cipher-new")}, secrets, "expiry is exclusive; the kept secret never expires")

	// A later rotation with a longer grace does not extend an earlier expiry.
	require.NoError(t, f.st.ExpirePublisherSecrets(f.ctx, "contoso", "fp-new", now.Add(5*time.Hour)))
	secrets, err = active("contoso", now.Add(2*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("cipher-new")}, secrets)

	other, err := active("litware", now.Add(2*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("cipher-litware")}, other, "another publisher's secrets are untouched")
	none, err := f.st.PublisherSecrets(f.ctx, "nobody", now)
	require.NoError(t, err)
	assert.Empty(t, none)
	_, _, err = f.st.PublisherWithSecrets(f.ctx, "nobody", now)
	assert.ErrorIs(t, err, store.ErrNotFound, "an unknown publisher")

	require.NoError(t, f.st.UpsertPublisher(f.ctx, store.Publisher{ID: "fourthcoffee", Name: "fourthcoffee", LandingURL: "https://fourthcoffee.example"}))
	bare, err := active("fourthcoffee", now)
	require.NoError(t, err)
	assert.Empty(t, bare, "a publisher without secrets is found, with none")
}

func TestCustomers(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"fabrikam", "tailspin"} {
		require.NoError(t, f.st.UpsertPartner(f.ctx, store.Partner{ID: id, Name: id}))
	}
	domainName := "woodgrove.example"
	before := time.Now().Add(-time.Minute)

	created, ok, err := f.st.CreateCustomer(f.ctx, store.Customer{PartnerID: "fabrikam", ID: "woodgrove", Name: "Woodgrove", Domain: &domainName})
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "Woodgrove", created.Name)
	assert.Equal(t, &domainName, created.Domain)
	assert.Equal(t, time.UTC, created.CreatedAt.Location())
	assert.True(t, created.CreatedAt.After(before), "created_at comes from the database")

	_, ok, err = f.st.CreateCustomer(f.ctx, store.Customer{PartnerID: "fabrikam", ID: "woodgrove", Name: "Impostor"})
	require.NoError(t, err)
	assert.False(t, ok, "a taken id is reported, not overwritten")
	got, err := f.st.Customer(f.ctx, "fabrikam", "woodgrove")
	require.NoError(t, err)
	assert.Equal(t, created, got)

	_, ok, err = f.st.CreateCustomer(f.ctx, store.Customer{PartnerID: "tailspin", ID: "woodgrove", Name: "Tailspin's Woodgrove"})
	require.NoError(t, err)
	assert.True(t, ok, "ids are per partner")
	for _, id := range []string{"northwind", "adatum"} {
		_, ok, err := f.st.CreateCustomer(f.ctx, store.Customer{PartnerID: "fabrikam", ID: id, Name: id})
		require.NoError(t, err)
		require.True(t, ok)
	}

	list, err := f.st.Customers(f.ctx, "fabrikam")
	require.NoError(t, err)
	names := make([]string, 0, len(list))
	for _, c := range list {
		assert.Equal(t, "fabrikam", c.PartnerID, "only the partner's own customers")
		names = append(names, c.ID)
	}
	assert.Equal(t, []string{"adatum", "northwind", "woodgrove"}, names, "newest first")
	assert.Equal(t, created, list[2])

	_, err = f.st.Customer(f.ctx, "tailspin", "northwind")
	assert.ErrorIs(t, err, store.ErrNotFound, "another partner's customer is not found")
	empty, err := f.st.Customers(f.ctx, "nobody")
	require.NoError(t, err)
	assert.Equal(t, []store.Customer{}, empty)
}

func TestOfferForPurchase(t *testing.T) {
	f := seeded(t)
	hook := "https://contoso.example/hooks"
	require.NoError(t, f.st.UpsertPublisher(f.ctx, store.Publisher{ID: publisherID, Name: "Contoso", LandingURL: "https://contoso.example/setup", WebhookURL: &hook}))
	offer, err := f.st.Offer(f.ctx, offerID)
	require.NoError(t, err)
	publisher, err := f.st.Publisher(f.ctx, publisherID)
	require.NoError(t, err)

	got, err := f.st.OfferForPurchase(f.ctx, partnerID, customerID, offerID)
	require.NoError(t, err)
	assert.Equal(t, store.OfferForPurchase{Offer: offer, Publisher: publisher, CustomerKnown: true}, got)
	require.NotNil(t, got.Publisher.WebhookURL)

	got, err = f.st.OfferForPurchase(f.ctx, partnerID, otherPartnerCustomer, offerID)
	require.NoError(t, err)
	assert.False(t, got.CustomerKnown, "another partner's customer")
	assert.Equal(t, offer, got.Offer)

	got, err = f.st.OfferForPurchase(f.ctx, partnerID, "nobody", offerID)
	require.NoError(t, err)
	assert.False(t, got.CustomerKnown)

	_, err = f.st.OfferForPurchase(f.ctx, partnerID, customerID, "no-such-offer")
	assert.ErrorIs(t, err, store.ErrNotFound)
}
