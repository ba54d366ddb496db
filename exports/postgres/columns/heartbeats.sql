    status      text
