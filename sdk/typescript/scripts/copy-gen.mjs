// The generated stubs live in gen/ts at the repository's root, outside this package;
// the build copies them into src/gen (not committed) so that tsc compiles them with
// the SDK and the published package carries them.
import { cpSync, rmSync } from "node:fs";

const from = new URL("../../../gen/ts/", import.meta.url);
const to = new URL("../src/gen/", import.meta.url);
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
