package portal

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOpenAPIValidates runs the document through the Python
// openapi-spec-validator when one is installed (OPENAPI_PYTHON names a
// python that has it; default python3). Debian has no package for it.
func TestOpenAPIValidates(t *testing.T) {
	t.Parallel()
	py := os.Getenv("OPENAPI_PYTHON")
	if py == "" {
		py = "python3"
	}
	if err := exec.Command(py, "-c", "import openapi_spec_validator").Run(); err != nil {
		t.Skipf("SKIP: no openapi-spec-validator for %s (set OPENAPI_PYTHON): %v", py, err)
	}
	e := newEnv(t)
	b, err := json.Marshal(e.api.document())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", "import json,sys\nfrom openapi_spec_validator import validate\n"+
		"validate(json.load(open(sys.argv[1])))", path).CombinedOutput()
	if err != nil {
		t.Fatalf("openapi-spec-validator: %v\n%s", err, out)
	}
}
