// Package chrometest starts Debian's Chromium headless for the portal's
// browser tests, in the portal's own tests and in the daemon's end-to-end
// tests, and holds the steps both need.
package chrometest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser.
const Path = "/usr/bin/chromium"

// Start launches the browser once (an empty Run), so per-step timeouts
// never kill it, and stops it when t ends. A missing Chromium is a failure,
// not a skip.
func Start(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		t.Fatalf("install chromium (apt-get install -y chromium): %v", err)
	}
	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile for a moment after the browser exits, and TempDir's cleanup
	// fails the test on a directory that is not empty.
	profile, err := os.MkdirTemp("", "hotdesk-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 { // bounded: a leftover directory in /tmp is no failure
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Path), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 900))
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// ClickToPage clicks what loads a new page and waits for sel on that page.
// The old page is marked first: sel may be on it too (a flash from an
// earlier action), and an action on its nodes while the new page loads
// fails with "No node with given id".
func ClickToPage(click, sel string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Evaluate(`document.documentElement.dataset.leaving = "1"`, nil),
		chromedp.Click(click, chromedp.ByQuery),
		chromedp.WaitReady(`html:not([data-leaving])`, chromedp.ByQuery),
		chromedp.WaitVisible(sel, chromedp.ByQuery)}
}
