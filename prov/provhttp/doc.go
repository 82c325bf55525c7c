// Package provhttp serves the provisioning namespace (prov.Files) over
// HTTP(S): GET/HEAD and PUT, device digest authentication, the native login
// door's digest check, and a rate limit on failures.
package provhttp
