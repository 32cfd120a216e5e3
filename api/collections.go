package api

// Collections: an offer of kind collection bundles apps. Buying it records
// the collection's subscription, then buys one app subscription per bundled
// app, linked to it (so deactivating the collection deactivates its apps
// through the ordinary cascade). App subscription ids derive from the
// collection's, so a purchase resumed under the same Idempotency-Key buys
// the same apps, never a second set.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

// bundle checks a collection offer's apps before anything is bought and
// returns each with its purchase (the collection's quantity, kept within the
// app plan's bounds).
func (s *Server) bundle(ctx context.Context, offer store.Offer, req PurchaseBody) ([]PurchaseBody, error) {
	items, err := s.Store.CollectionItems(ctx, offer.ID)
	if err != nil {
		return nil, unavailable(err)
	}
	if len(items) == 0 {
		return nil, problem(CodeValidationFailed, fmt.Sprintf("collection %q bundles no apps", offer.ID))
	}
	apps := make([]PurchaseBody, 0, len(items))
	for _, it := range items {
		app, err := s.Store.Offer(ctx, it.OfferID)
		if err != nil {
			return nil, unavailable(err)
		}
		if app.Kind != domain.OfferKindApp || !slices.Contains(app.ParentOfferIDs, offer.ID) {
			return nil, problem(CodeValidationFailed, fmt.Sprintf("collection %q bundles %q, which cannot be installed on it", offer.ID, app.ID))
		}
		plan, err := s.Store.Plan(ctx, it.OfferID, it.PlanID)
		if err != nil {
			return nil, unavailable(err)
		}
		quantity := min(max(*req.Quantity, plan.MinQuantity), plan.MaxQuantity)
		apps = append(apps, PurchaseBody{
			CustomerID: req.CustomerID, OfferID: it.OfferID, PlanID: it.PlanID, Quantity: &quantity,
			AutoRenew: req.AutoRenew, ResellerPartnerID: req.ResellerPartnerID,
		})
	}
	return apps, nil
}

// buyBundle buys the collection's apps, linked to it, and answers the
// collection as it stands with its links.
func (s *Server) buyBundle(ctx context.Context, agent store.Agent, collection domain.Subscription, apps []PurchaseBody) (domain.Subscription, error) {
	for i, app := range apps {
		app.ParentSubscriptionID = &collection.ID
		if _, err := s.startPurchase(ctx, agent, fmt.Sprintf("%s-app%d", collection.ID, i+1), app, nil); err != nil {
			var p *Problem
			if errors.As(err, &p) && p.Status < 500 {
				// The collection exists: a refusal now is the service's fault, and a
				// retry with the same key resumes (a 4xx would release the key).
				return collection, unavailable(fmt.Errorf("bundled app %s of %s: %w", app.OfferID, collection.ID, err))
			}
			return collection, err
		}
	}
	current, err := s.Store.Subscription(ctx, collection.ID)
	if err != nil {
		return collection, unavailable(err)
	}
	return current, nil
}
