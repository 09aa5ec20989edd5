// The TypeScript leg of sdk/crosslang: `xl.js set KEY HEX` stores a value, `xl.js get
// KEY...` prints each value in hex ("-" when missing). The address comes from the
// environment, as an application's would.
import { Client } from "../src/index.js";

const [cmd, ...args] = process.argv.slice(2);
const c = new Client();
try {
  if (cmd === "set") {
    await c.set(args[0], Buffer.from(args[1], "hex"));
  } else if (cmd === "get") {
    for (const v of await c.getMany(args)) {
      console.log(v === undefined ? "-" : Buffer.from(v).toString("hex"));
    }
  } else {
    throw new Error(`usage: xl.js set KEY HEX | get KEY...`);
  }
} finally {
  await c.close();
}
