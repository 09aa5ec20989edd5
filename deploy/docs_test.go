package deploy_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// ref is [`path:line`](../path#Lline) `text`: a line of a file that must hold text.
var ref = regexp.MustCompile("\\[`([^`:]+):(\\d+)`\\]\\(\\.\\./([^)#]+)#L(\\d+)\\)\\s+`([^`]+)`")

// TestDocsReferences: every manifest reference in docs/kubernetes.md names a line that
// still holds the text it quotes, so the production checklist cannot drift from the
// manifests without this test saying where.
func TestDocsReferences(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(root, "docs", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	refs := ref.FindAllStringSubmatch(string(doc), -1)
	if len(refs) < 20 {
		t.Fatalf("found %d references in docs/kubernetes.md; the pattern or the doc changed", len(refs))
	}
	// Every "](../x#L" link must be a reference of the checked form.
	if n := strings.Count(string(doc), "#L"); n != len(refs) {
		t.Errorf("%d line links but %d of the form [`path:line`](../path#Lline) `text`", n, len(refs))
	}
	lines := map[string][]string{}
	for _, m := range refs {
		shown, shownLine, target, line, text := m[1], m[2], m[3], m[4], m[5]
		if shown != target || shownLine != line {
			t.Errorf("%s:%s links to %s#L%s", shown, shownLine, target, line)
			continue
		}
		if _, ok := lines[target]; !ok {
			lines[target] = readLines(t, filepath.Join(root, target))
		}
		n, _ := strconv.Atoi(line)
		if n < 1 || n > len(lines[target]) {
			t.Errorf("%s:%d: the file has %d lines", target, n, len(lines[target]))
			continue
		}
		if got := lines[target][n-1]; !strings.Contains(got, text) {
			t.Errorf("%s:%d is %q, the doc quotes %q: update the line number in docs/kubernetes.md", target, n, strings.TrimSpace(got), text)
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ls []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ls = append(ls, sc.Text())
	}
	return ls
}
