package portal

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/store"
)

var funcs = template.FuncMap{
	"date": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2 Jan 2006")
	},
	"datetime": func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04:05 MST") },
	"money":    money,
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"human": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"join":  strings.Join,
	"has": func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	},
}

// money shows minor units in their currency, e.g. "USD 12.00".
func money(minor int64, currency string) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%s %d.%02d", sign, currency, minor/100, minor%100)
}

// parsePages builds one template set per page: the layout and the page.
func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	names, _ := fs.Glob(files, "templates/*.html")
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".html")
		if base == "layout" {
			continue
		}
		pages[base] = template.Must(template.New(base).Funcs(funcs).ParseFS(files, "templates/layout.html", name))
	}
	return pages
}

// render answers a page; data gets the signed-in identity and CSRF token.
func (p *Portal) render(c *gin.Context, status int, page string, data gin.H) {
	data["CSRF"] = p.csrf(c)
	if v, ok := c.Get(identityKey); ok {
		id := v.(store.PortalIdentity)
		data["Me"] = id
		data["Agent"] = id.IsAgent()
	}
	var b bytes.Buffer
	if err := p.pages[page].ExecuteTemplate(&b, "layout", data); err != nil {
		p.Logger.Error("render portal page", "page", page, "error", err)
		c.String(http.StatusInternalServerError, "the page could not be shown")
		c.Abort()
		return
	}
	c.Data(status, "text/html; charset=utf-8", b.Bytes())
	c.Abort()
}

// fail answers an error page with a way back.
func (p *Portal) fail(c *gin.Context, status int, message string) {
	p.render(c, status, "error", gin.H{"Title": http.StatusText(status), "Message": message})
}

// notFound is the answer for anything outside the visitor's tenant too.
func (p *Portal) notFound(c *gin.Context) {
	p.fail(c, http.StatusNotFound, "There is nothing here, or it is not yours to see.")
}
