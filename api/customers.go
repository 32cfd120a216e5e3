package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/partnerhub/fulfillment/store"
)

// CustomerBody is the body of POST /v1/customers.
type CustomerBody struct {
	ID     *string `json:"id"`
	Name   string  `json:"name"`
	Domain *string `json:"domain"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (s *Server) createCustomer(c *gin.Context) {
	req, ok := decodeBody(c, func(body []byte) (req CustomerBody, err error) {
		if err = DecodeStrict(body, &req); err == nil && req.Name == "" {
			err = problem(CodeInvalidRequest, `field "name" is required`)
		}
		return req, err
	})
	if !ok {
		return
	}
	if err := checkText("name", &req.Name, 256); err != nil {
		writeProblem(c, err)
		return
	}
	if err := checkText("domain", req.Domain, 253); err != nil {
		writeProblem(c, err)
		return
	}
	id := "cus_" + uuid.NewString()
	if req.ID != nil {
		if !idPattern.MatchString(*req.ID) {
			writeProblem(c, problem(CodeInvalidRequest, "id may hold letters, digits, '.', '_' and '-' (at most 128)"))
			return
		}
		id = *req.ID
	}
	agent := currentAgent(c)
	customer, created, err := s.Store.CreateCustomer(c.Request.Context(), store.Customer{
		PartnerID: agent.PartnerID, ID: id, Name: req.Name, Domain: req.Domain,
	})
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	if !created {
		writeProblem(c, problem(CodeAlreadyExists, fmt.Sprintf("customer %q already exists", id)))
		return
	}
	c.Header("Location", "/v1/customers/"+customer.ID)
	c.JSON(http.StatusCreated, customer)
}

func (s *Server) listCustomers(c *gin.Context) {
	customers, err := s.Store.Customers(c.Request.Context(), currentAgent(c).PartnerID)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": customers, "next_cursor": nil})
}

func (s *Server) getCustomer(c *gin.Context) {
	var customer store.Customer
	err := store.ErrNotFound
	if lookupable(c.Param("id")) {
		customer, err = s.Store.Customer(c.Request.Context(), currentAgent(c).PartnerID, c.Param("id"))
	}
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(c, problem(CodeNotFound, "no customer "+strconv.Quote(c.Param("id"))))
		return
	}
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, customer)
}
