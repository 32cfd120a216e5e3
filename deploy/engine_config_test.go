package deploy

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/partnerhub/fulfillment/config"
)

// The engine settings every dev server gets (config.DevServerDynamicConfig)
// hold on the production-shaped engines too: the Compose stack's Temporal and
// the PostgreSQL stack's (make run-pg, test-pg, bench-pg), with the same
// values, so no environment measures or runs on another engine than the rest.
func TestEnginesShareTheDevServersDynamicConfig(t *testing.T) {
	var compose struct {
		Configs map[string]struct {
			Content string `yaml:"content"`
		} `yaml:"configs"`
	}
	raw, _ := readCompose(t)
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	pgStack, err := os.ReadFile("temporal-pg/dynamicconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"docker-compose.yml":                    compose.Configs["temporal-dynamic-config"].Content,
		"deploy/temporal-pg/dynamicconfig.yaml": string(pgStack),
	} {
		var values map[string][]struct {
			Value any `yaml:"value"`
		}
		if err := yaml.Unmarshal([]byte(content), &values); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, kv := range config.DevServerDynamicConfig {
			key, want, _ := strings.Cut(kv, "=")
			got := values[key]
			if len(got) != 1 {
				t.Errorf("%s: %s has %d values, want one (%s)", name, key, len(got), want)
				continue
			}
			s := fmt.Sprint(got[0].Value) // true, 200: as the dev server flags write them
			if s != want {
				t.Errorf("%s: %s = %s, the dev servers have %s", name, key, s, want)
			}
		}
	}
}
