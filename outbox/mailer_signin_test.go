package outbox_test

import (
	"context"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/outbox"
	"github.com/partnerhub/fulfillment/seed"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/vault"
)

// A sign-in email carries a link whose token is derived at send time and
// matches the hash stored with the link; without PORTAL_URL it is skipped.
func TestMailerSendsSignInLinks(t *testing.T) {
	ctx := context.Background()
	st, _ := testenv.Database(t)
	v, err := vault.Parse(testenv.SecretKey())
	require.NoError(t, err)
	f, err := seed.Parse([]byte(`{"publishers":[],"offers":[],
	  "partners":[{"id":"fabrikam","name":"Fabrikam","agents":[{"id":"alice","role":"admin_agent","api_key":"a-long-enough-demo-key","email":"alice@fabrikam.test"}]}],
	  "customers":[{"id":"woodgrove","partner_id":"fabrikam","name":"Woodgrove Bank","contact_email":"ann@woodgrove.test"}]}`))
	require.NoError(t, err)
	require.NoError(t, seed.Load(ctx, st, v, f))
	st.DB().MustExecContext(ctx, `UPDATE email_outbox SET sent_at = now()`) // the welcome is not the point here
	hash := func(id string) []byte { return store.TokenHash(v.SignInToken(id)) }
	_, err = st.RequestSignIn(ctx, "ann@woodgrove.test", hash, 15*time.Minute)
	require.NoError(t, err)
	_, err = st.RequestSignIn(ctx, "alice@fabrikam.test", hash, 15*time.Minute)
	require.NoError(t, err)

	sent := &recording{}
	m := &outbox.Mailer{Store: st, Vault: v, Sender: sent, Logger: slog.New(slog.DiscardHandler), PortalURL: "https://subs.example/portal/"}
	require.NoError(t, m.SendDue(ctx))
	require.Len(t, sent.got, 2)
	link := regexp.MustCompile(`https://subs\.example/portal/sign-in/([A-Za-z0-9_-]{43})`)
	for _, msg := range sent.got {
		match := link.FindStringSubmatch(msg.Text)
		require.NotNil(t, match, msg.Text)
		assert.Contains(t, msg.HTML, match[0])
		var n int
		require.NoError(t, st.DB().Get(&n, `SELECT count(*) FROM portal_sign_in_links WHERE token_hash = $1`, store.TokenHash(match[1])))
		assert.Equal(t, 1, n, "the emailed token is the stored hash's")
	}
	assert.Contains(t, sent.got[0].Subject+sent.got[1].Subject, "Your sign-in link for Woodgrove Bank")
	assert.Contains(t, sent.got[0].Subject+sent.got[1].Subject, "Your sign-in link for Fabrikam")

	_, err = st.RequestSignIn(ctx, "ann@woodgrove.test", hash, 15*time.Minute)
	require.NoError(t, err)
	unset := &outbox.Mailer{Store: st, Vault: v, Sender: sent, Logger: slog.New(slog.DiscardHandler)}
	require.NoError(t, unset.SendDue(ctx))
	assert.Len(t, sent.got, 2, "no link can be built without PORTAL_URL")
	var skipped int
	require.NoError(t, st.DB().Get(&skipped, `SELECT count(*) FROM email_outbox WHERE kind = 'sign_in' AND skipped_at IS NOT NULL`))
	assert.Equal(t, 1, skipped)
}
