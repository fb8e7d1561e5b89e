import { writeFile } from 'node:fs/promises';
import { openapiSpec, OPENAPI_FILE } from '../src/api/openapi-spec.ts';
import { clientTypes, CLIENT_TYPES_FILE } from './client-types.ts';

// `npm run openapi`: regenerates openapi/openapi.json from the routes and the client types from it
// (tests fail when either drifts from the routes).
const spec = await openapiSpec();
await writeFile(OPENAPI_FILE, `${JSON.stringify(spec, null, 2)}\n`);
await writeFile(CLIENT_TYPES_FILE, await clientTypes(spec));
console.log(`wrote ${OPENAPI_FILE} and ${CLIENT_TYPES_FILE}`);
process.exit(0);
