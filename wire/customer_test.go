package wire_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/wire"
)

func TestActionRequiredFollowsFulfillment(t *testing.T) {
	s := domain.Subscription{Status: domain.StatusPendingFulfillment}
	assert.Equal(t, wire.ActionSetupRequired, wire.NewActionRequired(s).Code, "nothing done yet: set up first")
	s.LicensesAssigned = 3
	assert.Equal(t, wire.ActionSetupRequired, wire.NewActionRequired(s).Code, "licenses in, set-up not confirmed")
	s.LicensesAssigned, s.FulfillmentConfirmed = 0, true
	assert.Equal(t, wire.ActionLicensesNotAssigned, wire.NewActionRequired(s).Code)
	s.Status = domain.StatusActive
	assert.Nil(t, wire.NewActionRequired(s), "active: nothing required")
	s.Status = domain.StatusFulfillmentExpired
	assert.Nil(t, wire.NewActionRequired(s), "terminal: nothing can be done")
	v := wire.NewSubscription(domain.Subscription{Status: domain.StatusPendingFulfillment}, s.CreatedAt, nil)
	assert.NotNil(t, v.ActionRequired)
	assert.Nil(t, v.Site, "the API fills site and billing account from the read model")
}
