package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/api/openapi"
)

func (s *Server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", openapi.Document())
}
