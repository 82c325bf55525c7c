// Package provhttp serves the provisioning namespace (files.Files) over
// HTTP(S): GET/HEAD and PUT, device digest authentication, the native login
// door's digest check (the server side shared with the registrar:
// hotdesk/sip/digestserver), and a rate limit on failures.
package provhttp
