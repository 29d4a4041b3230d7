import { groupLag, withAdmin } from './streams/admin.js';
const kafka = { brokers: ['127.0.0.1:19092'] };
const g = process.argv[2]!;
console.log(await withAdmin(kafka, (admin) => groupLag(admin, g, [g])));
