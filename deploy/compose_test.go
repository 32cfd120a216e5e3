// Package deploy checks the container files at the repository root: the
// docker-compose.yml stack and the Dockerfile it builds from.
package deploy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	composePath    = "../docker-compose.yml"
	dockerfilePath = "../Dockerfile"
)

// searchAttributes are the Keyword attributes the subscription workflow sets.
var searchAttributes = []string{"PartnerId", "CustomerId", "OfferId", "SubscriptionStatus"}

type composeFile struct {
	Services map[string]service `yaml:"services"`
}

type service struct {
	Image       string       `yaml:"image"`
	Build       yaml.Node    `yaml:"build"`
	Command     yaml.Node    `yaml:"command"`
	Environment yaml.Node    `yaml:"environment"`
	DependsOn   yaml.Node    `yaml:"depends_on"`
	Ports       []string     `yaml:"ports"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
}

type healthcheck struct {
	Test yaml.Node `yaml:"test"`
}

func readCompose(t *testing.T) ([]byte, composeFile) {
	t.Helper()
	raw, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("parse %s: %v", composePath, err)
	}
	return raw, f
}

// TestComposeConfig lets Docker Compose itself validate the file when it is
// installed; `config` needs no Docker engine.
func TestComposeConfig(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker client not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "compose", "version").CombinedOutput(); err != nil {
		t.Skipf("docker compose not available: %v: %s", err, bytes.TrimSpace(out))
	}
	out, err := exec.CommandContext(ctx, "docker", "compose", "-f", composePath, "config", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("docker compose config: %v\n%s", err, out)
	}
}

func TestComposeServices(t *testing.T) {
	_, f := readCompose(t)
	for _, name := range []string{"postgres", "temporal", "temporal-ui", "migrate", "api", "worker"} {
		if _, ok := f.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}

	for name, want := range map[string]string{"migrate": "migrate", "api": "api", "worker": "worker"} {
		s := f.Services[name]
		if got := strings.Join(stringList(t, &s.Command), " "); got != want {
			t.Errorf("%s: command %q, want [%q]", name, got, want)
		}
		if dockerfile := buildDockerfile(t, name, s); filepath.Clean(dockerfile) != filepath.Clean(dockerfilePath) {
			t.Errorf("%s: builds from %q, want %s", name, dockerfile, dockerfilePath)
		}
		env := environment(t, &s.Environment)
		for _, key := range []string{"DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "HTTP_ADDR", "SECRET_KEY"} {
			if env[key] == "" {
				t.Errorf("%s: environment lacks %s", name, key)
			}
		}
		if !strings.Contains(env["DATABASE_URL"], "@postgres:5432/fulfillment") {
			t.Errorf("%s: DATABASE_URL %q does not point at the postgres service", name, env["DATABASE_URL"])
		}
		if env["TEMPORAL_ADDRESS"] != "temporal:7233" {
			t.Errorf("%s: TEMPORAL_ADDRESS %q, want temporal:7233", name, env["TEMPORAL_ADDRESS"])
		}
	}

	api := f.Services["api"]
	if api.Healthcheck == nil || !strings.Contains(strings.Join(stringList(t, &api.Healthcheck.Test), " "), "/readyz") {
		t.Error("api: needs a healthcheck on /readyz")
	}
	if !slices.Contains(api.Ports, "8080:8080") {
		t.Errorf("api: ports %v, want 8080:8080", api.Ports)
	}
	if ui := f.Services["temporal-ui"]; !slices.Contains(ui.Ports, "8233:8080") {
		t.Errorf("temporal-ui: ports %v, want 8233:8080", ui.Ports)
	}
	if pg := f.Services["postgres"]; pg.Healthcheck == nil || !strings.Contains(strings.Join(stringList(t, &pg.Healthcheck.Test), " "), "pg_isready") {
		t.Error("postgres: needs a pg_isready healthcheck")
	}
	temporal := f.Services["temporal"]
	if env := environment(t, &temporal.Environment); env["DB"] != "postgres12" {
		t.Errorf("temporal: DB %q, want postgres12", env["DB"])
	}
	if temporal.Healthcheck == nil {
		t.Error("temporal: needs a healthcheck")
	}
}

func TestComposeDependsOnExistingServices(t *testing.T) {
	_, f := readCompose(t)
	for name, s := range f.Services {
		for _, dep := range dependsOn(t, &s.DependsOn) {
			if _, ok := f.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %q", name, dep)
			}
		}
	}
	for _, name := range []string{"api", "worker"} {
		deps := dependsOn(t, ptr(f.Services[name].DependsOn))
		for _, want := range []string{"migrate", "temporal"} {
			if !slices.Contains(deps, want) {
				t.Errorf("%s should depend on %s, has %v", name, want, deps)
			}
		}
	}
}

func TestComposeRegistersSearchAttributes(t *testing.T) {
	raw, _ := readCompose(t)
	if !bytes.Contains(raw, []byte("temporal operator search-attribute create")) {
		t.Error("no `temporal operator search-attribute create` in the compose file")
	}
	for _, name := range searchAttributes {
		if !regexp.MustCompile(`\b` + name + `\b`).Match(raw) {
			t.Errorf("search attribute %s is not registered", name)
		}
	}
	if !bytes.Contains(raw, []byte("--type Keyword")) {
		t.Error("search attributes must be registered as Keyword")
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, check := range []struct{ pattern, what string }{
		{`(?m)^FROM golang:1\.26\S* AS build`, "a golang:1.26 build stage"},
		{`(?m)go build .*\./cmd/fulfillment\s*$`, "builds ./cmd/fulfillment"},
		{`(?m)^USER (\d*[1-9]\d*|[a-z][a-z0-9_-]*)(:\S+)?\s*$`, "runs as a non-root user"},
		{`(?m)^ENTRYPOINT \["/fulfillment"\]\s*$`, `ENTRYPOINT ["/fulfillment"]`},
	} {
		if !regexp.MustCompile(check.pattern).MatchString(text) {
			t.Errorf("Dockerfile: %s (no match for %s)", check.what, check.pattern)
		}
	}
	if regexp.MustCompile(`(?m)^USER (root|0)\b`).MatchString(text) {
		t.Error("Dockerfile: runs as root")
	}
	if _, err := os.Stat("../cmd/fulfillment"); err != nil {
		t.Errorf("Dockerfile builds ./cmd/fulfillment: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// stringList reads a compose string-or-list field (command, healthcheck test).
func stringList(t *testing.T, n *yaml.Node) []string {
	t.Helper()
	switch n.Kind {
	case 0:
		return nil
	case yaml.ScalarNode:
		return []string{n.Value}
	}
	var out []string
	if err := n.Decode(&out); err != nil {
		t.Fatalf("line %d: %v", n.Line, err)
	}
	return out
}

// environment reads a compose environment, as a map or a KEY=VALUE list.
func environment(t *testing.T, n *yaml.Node) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch n.Kind {
	case 0:
	case yaml.SequenceNode:
		for _, kv := range stringList(t, n) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	default:
		if err := n.Decode(&env); err != nil {
			t.Fatalf("line %d: %v", n.Line, err)
		}
	}
	return env
}

// dependsOn reads a compose depends_on, as a list or a map with conditions.
func dependsOn(t *testing.T, n *yaml.Node) []string {
	t.Helper()
	switch n.Kind {
	case 0:
		return nil
	case yaml.SequenceNode:
		return stringList(t, n)
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		t.Fatalf("line %d: %v", n.Line, err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// buildDockerfile returns the Dockerfile a service builds from, relative to
// this directory, or "" when it builds nothing.
func buildDockerfile(t *testing.T, name string, s service) string {
	t.Helper()
	var b struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	}
	switch s.Build.Kind {
	case 0:
		return ""
	case yaml.ScalarNode:
		b.Context = s.Build.Value
	default:
		if err := s.Build.Decode(&b); err != nil {
			t.Fatalf("%s: build: %v", name, err)
		}
	}
	if b.Context == "" {
		b.Context = "."
	}
	if b.Dockerfile == "" {
		b.Dockerfile = "Dockerfile"
	}
	return filepath.Join("..", b.Context, b.Dockerfile)
}
