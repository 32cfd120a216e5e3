package email_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/email"
)

func sample() email.Data {
	end := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	return email.Data{
		Recipient: "ann@woodgrove.example", CustomerName: "Woodgrove <Bank>", PartnerName: "Fabrikam",
		Primary: true, Roles: []string{"billing", "technical"}, SubscriptionID: "sub-1", OfferName: "Contoso Analytics",
		PlanName: "Standard", Nickname: "HQ", Quantity: 5, EntitlementNumber: "ENT-ABC", Status: "deactivated",
		NeedsSetup: true, TermNumber: 1, TermEnd: &end, FromAccount: "Default", ToAccount: "Europe",
		Linked:   []email.LinkedSubscription{{ID: "app-1", OfferName: "Contoso Reports", Nickname: "R"}},
		SetupURL: "https://contoso.example/setup?token=abc&x=1", PortalURL: "https://portal.example/portal/",
	}
}

// Every kind renders a subject, a text part and an HTML part.
func TestEveryKindRenders(t *testing.T) {
	for _, kind := range email.Kinds {
		m, err := email.Render(kind, "eml_1", sample())
		require.NoError(t, err, kind)
		assert.NotEmpty(t, m.Subject, kind)
		assert.NotContains(t, m.Subject, "\n", kind)
		assert.Contains(t, m.Text, "Woodgrove <Bank>", kind)
		assert.Contains(t, m.HTML, "Woodgrove &lt;Bank&gt;", "%s: HTML escapes what it shows", kind)
		assert.NotContains(t, m.HTML, "Woodgrove <Bank>", kind)
		assert.Equal(t, "ann@woodgrove.example", m.To)
		assert.True(t, strings.HasPrefix(m.HTML, "<!DOCTYPE html>"), kind)
	}
}

func TestOrderPlacedShowsSetUpLinkOnlyWhenNeeded(t *testing.T) {
	d := sample()
	m, err := email.Render(email.KindOrderPlaced, "eml_1", d)
	require.NoError(t, err)
	assert.Contains(t, m.Text, "Set it up here: https://contoso.example/setup?token=abc&x=1")
	assert.Contains(t, m.HTML, `href="https://contoso.example/setup?token=abc&amp;x=1"`)
	assert.Contains(t, m.Text, "Users:        5")
	d.NeedsSetup, d.SetupURL = false, ""
	m, err = email.Render(email.KindOrderPlaced, "eml_1", d)
	require.NoError(t, err)
	assert.NotContains(t, m.Text, "Set it up")
	assert.Contains(t, m.Text, "No set-up is needed.")
}

func TestSubscriptionEndedListsLinked(t *testing.T) {
	d := sample()
	m, err := email.Render(email.KindSubscriptionEnded, "eml_1", d)
	require.NoError(t, err)
	assert.Equal(t, "Contoso Analytics has been deactivated", m.Subject)
	assert.Contains(t, m.Text, `- Contoso Reports "R" (app-1)`)
	assert.Contains(t, m.HTML, "<li>Contoso Reports")
	assert.Contains(t, m.Text, "cannot be undone")
	d.Status, d.Linked = "expired", nil
	m, err = email.Render(email.KindSubscriptionEnded, "eml_1", d)
	require.NoError(t, err)
	assert.Equal(t, "Contoso Analytics has expired", m.Subject)
	assert.Contains(t, m.Text, "No linked subscriptions ended with it.")
	assert.NotContains(t, m.Text, "cannot be undone")
}

func TestRenewalAndTransferName(t *testing.T) {
	m, err := email.Render(email.KindRenewalReminder, "eml_1", sample())
	require.NoError(t, err)
	assert.Equal(t, "Contoso Analytics renews on 1 March 2027, 12:00 UTC", m.Subject)
	m, err = email.Render(email.KindBillingAccountChanged, "eml_1", sample())
	require.NoError(t, err)
	assert.Contains(t, m.Text, `from billing account "Default" to "Europe"`)
}

func TestSMTPURL(t *testing.T) {
	for _, bad := range []string{"http://x:25", "smtp://", "::"} {
		_, err := email.NewSMTP(bad, "a@b.example", "b.example")
		assert.Error(t, err, bad)
	}
	_, err := email.NewSMTP("smtps://user:pw@mail.example:465", "a@b.example", "b.example")
	assert.NoError(t, err)
	assert.Equal(t, "eml_1@b.example", email.MessageID("eml_1", "b.example"))
}

func TestSuspensionAndItsEnd(t *testing.T) {
	m, err := email.Render(email.KindPaymentFailed, "eml_1", sample())
	require.NoError(t, err)
	assert.Equal(t, "Contoso Analytics is suspended: a payment failed", m.Subject)
	assert.Contains(t, m.Text, "does not renew until")
	d := sample()
	d.Status = "unsubscribed"
	m, err = email.Render(email.KindSubscriptionEnded, "eml_1", d)
	require.NoError(t, err)
	assert.Equal(t, "Contoso Analytics has ended: the payment did not arrive", m.Subject)
	assert.NotContains(t, m.Text, "cannot be undone")
	assert.NotContains(t, m.HTML, "cannot be undone")
}
